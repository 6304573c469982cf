package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/server/api"
	"github.com/builder-dev/builder/source/localctx"
)

// TestOrderIsConsistent: routing is stable, spreads projects, and a
// removed host's projects move to their next host while no other moves.
func TestOrderIsConsistent(t *testing.T) {
	hosts := []string{"tcp://b1:1234", "tcp://b2:1234", "tcp://b3:1234"}
	perHost := map[string]int{}
	for i := range 60 {
		key := RouteKey(fmt.Sprintf("/src/svc-%d", i), "/src/Dockerfile", "")
		first := Order(hosts, key)
		if again := Order([]string{hosts[2], hosts[0], hosts[1]}, key); strings.Join(again, ",") != strings.Join(first, ",") {
			t.Fatalf("Order depends on the order of hosts: %v, %v", first, again)
		}
		perHost[first[0]]++
		without := Order([]string{hosts[0], hosts[2]}, key)
		if first[0] != hosts[1] && without[0] != first[0] {
			t.Errorf("key %d moved from %s to %s when %s was removed", i, first[0], without[0], hosts[1])
		}
		if first[0] == hosts[1] && without[0] != first[1] {
			t.Errorf("key %d of the removed host went to %s, want its next, %s", i, without[0], first[1])
		}
	}
	for _, h := range hosts {
		if perHost[h] < 5 {
			t.Errorf("host %s got %d of 60 projects: %v", h, perHost[h], perHost)
		}
	}
}

// TestPoolFailsOver: a build whose first server is down runs on the next.
func TestPoolFailsOver(t *testing.T) {
	built := 0
	srv, err := New(t.TempDir(), 0, Policy{}, func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error) {
		built++
		return &api.Result{Digest: "sha256:" + strings.Repeat("1", 64)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	live, dead := serveUnix(t, srv), "unix://"+filepath.Join(t.TempDir(), "dead.sock")
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "f"), []byte("x"), 0o644)
	tree, err := localctx.NewTree(ctxDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A key the dead server comes first for.
	var key string
	for i := 0; ; i++ {
		key = RouteKey(fmt.Sprint("/p", i), "", "")
		if Order([]string{live, dead}, key)[0] == dead {
			break
		}
	}
	var warned []string
	res, err := BuildOnPool(t.Context(), []string{live, dead}, TLSFiles{}, key, Trees{Main: tree}, &api.BuildRequest{}, nil, Handlers{}, func(w string) { warned = append(warned, w) })
	if err != nil {
		t.Fatalf("BuildOnPool with one server down: %v", err)
	}
	if built != 1 || res.Digest == "" {
		t.Errorf("built %d times, result %+v; want once on the live server", built, res)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "dead.sock") {
		t.Errorf("warnings = %q, want one naming the dead server", warned)
	}
	if _, err := BuildOnPool(t.Context(), []string{dead}, TLSFiles{}, key, Trees{Main: tree}, &api.BuildRequest{}, nil, Handlers{}, nil); err == nil {
		t.Error("BuildOnPool with every server down succeeded")
	}
}
