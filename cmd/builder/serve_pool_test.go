package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/server"
)

// TestServePoolFailover runs six projects on a pool of three servers
// sharing their cache through a registry: each project goes to the same
// server every time (with its cache warm there), and when its server is
// stopped it goes to the next of its order, where its RUN step is cached
// from the registry although that server never ran it.
func TestServePoolFailover(t *testing.T) {
	testutil.RequiresRoot(t)
	bin := builderBinary(t)
	reg := testutil.InProcessRegistry(t)
	var hosts []string
	var stop []func()
	for range 3 {
		host, cmd := startServerCmd(t, cli{t: t, bin: bin, root: t.TempDir()})
		hosts = append(hosts, host)
		stop = append(stop, func() { cmd.Process.Kill(); cmd.Wait() })
	}
	pool := strings.Join(hosts, ",")
	stopped := map[int]bool{}
	client := cli{t: t, bin: bin, root: t.TempDir()}
	// served runs hosts' step counters before and after fn and returns
	// the server whose counters moved (-1: none or several).
	served := func(fn func()) int {
		t.Helper()
		steps := func(i int) int64 {
			if stopped[i] {
				return 0
			}
			m := metricsOf(t, hosts[i])
			return m["builder_step_cache_hits_total"] + m["builder_step_cache_misses_total"]
		}
		var before []int64
		for i := range hosts {
			before = append(before, steps(i))
		}
		fn()
		who := -1
		for i := range hosts {
			if steps(i) != before[i] {
				if who >= 0 {
					return -1
				}
				who = i
			}
		}
		return who
	}
	type project struct {
		dir   string
		order []string
		on    int
	}
	build := func(p *project, n int) (stderr string) {
		t.Helper()
		cache := "type=registry,ref=" + reg + "/cache/" + filepath.Base(p.dir)
		var code int
		p.on = served(func() {
			_, stderr, code = client.run("--host", pool, "build", "--progress", "plain", "--cache-to", cache+",mode=max", "--cache-from", cache, p.dir)
		})
		if code != 0 {
			t.Fatalf("build %d of %s: exit %d\n%s", n, p.dir, code, stderr)
		}
		return stderr
	}
	runCached := func(stderr, name string) bool {
		m := regexp.MustCompile(`#(\d+) \[[^\]]*\] RUN .*` + name).FindStringSubmatch(stderr)
		return m != nil && strings.Contains(stderr, "#"+m[1]+" CACHED\n")
	}
	var projects []*project
	for i := range 6 {
		name := fmt.Sprintf("project-%d", i)
		dir := busyboxContext(t, `RUN ["/bin/busybox", "sh", "-c", "echo `+name+` > /p"]`+"\n")
		dir2 := filepath.Join(t.TempDir(), name)
		if err := os.Rename(dir, dir2); err != nil {
			t.Fatal(err)
		}
		p := &project{dir: dir2, order: server.Order(hosts, server.RouteKey(dir2, "", ""))}
		build(p, 1)
		if p.on < 0 || hosts[p.on] != p.order[0] {
			t.Fatalf("%s built on server %d, want the first of its order %v", name, p.on, p.order)
		}
		projects = append(projects, p)
	}
	for i, p := range projects {
		first := p.on
		stderr := build(p, 2)
		if p.on != first || !runCached(stderr, fmt.Sprintf("project-%d", i)) {
			t.Errorf("project-%d's rebuild ran on server %d (first on %d), RUN cached %v:\n%s", i, p.on, first, runCached(stderr, fmt.Sprintf("project-%d", i)), stderr)
		}
	}
	down := projects[0].on
	stop[down]()
	stopped[down] = true
	moved := 0
	for i, p := range projects {
		was := p.on
		name := fmt.Sprintf("project-%d", i)
		stderr := build(p, 3)
		if was != down {
			if p.on != was {
				t.Errorf("%s moved from server %d to %d when server %d stopped", name, was, p.on, down)
			}
			continue
		}
		moved++
		if hosts[p.on] != p.order[1] {
			t.Errorf("%s failed over to server %d, want the next of its order %v", name, p.on, p.order)
		}
		if !strings.Contains(stderr, "trying the next server") {
			t.Errorf("%s's failover was not reported:\n%s", name, stderr)
		}
		if !runCached(stderr, name) {
			t.Errorf("%s's RUN step ran again after failing over: the registry cache was not used:\n%s", name, stderr)
		}
	}
	if moved == 0 {
		t.Fatal("no project was on the stopped server")
	}
}
