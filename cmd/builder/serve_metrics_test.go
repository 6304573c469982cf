package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/builder-dev/builder/internal/testutil"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// metricsOf reads a server's /metrics on its UNIX socket.
func metricsOf(t *testing.T, host string) map[string]int64 {
	t.Helper()
	sock := strings.TrimPrefix(host, "unix://")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://builder/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]int64{}
	for _, m := range regexp.MustCompile(`(?m)^(builder_\w+) (\d+)$`).FindAllStringSubmatch(string(b), -1) {
		out[m[1]], _ = strconv.ParseInt(m[2], 10, 64)
	}
	return out
}

// TestServeMetricsBytes builds through a server from a registry's base
// image and pushes the result: /metrics counts at least the base's layer
// as pulled, the new layer and config as pushed, and the context's bytes
// as synced.
func TestServeMetricsBytes(t *testing.T) {
	testutil.RequiresRoot(t)
	srv := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	host := startServer(t, srv)
	reg := testutil.InProcessRegistry(t)
	base := testutil.BusyboxImage(t)
	testutil.PushImage(t, base, reg+"/base/busybox:1")
	before := metricsOf(t, host)
	for _, k := range []string{"builder_registry_pulled_bytes_total", "builder_registry_pushed_bytes_total", "builder_context_synced_bytes_total"} {
		if v, ok := before[k]; !ok || v != 0 {
			t.Fatalf("a new server's %s = %d (present %v), want 0", k, v, ok)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+reg+"/base/busybox:1\nCOPY data /data\nRUN head -c 100000 /dev/urandom > /random\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "data"), []byte(strings.Repeat("context bytes\n", 1000)), 0o644)
	ref := reg + "/out/app:1"
	_, stderr, code := srv.run("--host", host, "build", "--progress", "plain", "--push", "-t", ref, dir)
	if code != 0 {
		t.Fatalf("remote build and push: exit %d\n%s", code, stderr)
	}
	after := metricsOf(t, host)

	baseLayers, _ := base.Layers()
	var baseSize int64
	for _, l := range baseLayers {
		n, _ := l.Size()
		baseSize += n
	}
	if got := after["builder_registry_pulled_bytes_total"]; got < baseSize {
		t.Errorf("pulled %d bytes, want at least the base image's layers, %d", got, baseSize)
	}
	pushed, err := remote.Image(mustRef(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := pushed.Layers()
	last, _ := layers[len(layers)-1].Size()
	cfg, _ := pushed.RawConfigFile()
	if got, want := after["builder_registry_pushed_bytes_total"], last+int64(len(cfg)); got < want || last < 100000 {
		t.Errorf("pushed %d bytes, want at least the RUN layer (%d) and the config (%d)", got, last, len(cfg))
	}
	m := syncedRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no context sync line:\n%s", stderr)
	}
	if synced, _ := strconv.ParseInt(m[2], 10, 64); after["builder_context_synced_bytes_total"] != synced || synced < 14000 {
		t.Errorf("synced %d bytes by /metrics, %d by the client, want the same (>= the 14000 of data)", after["builder_context_synced_bytes_total"], synced)
	}
}

func mustRef(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
