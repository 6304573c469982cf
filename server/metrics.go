package server

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// metrics are the counters /metrics exposes, written in the Prometheus
// text format by hand: a few numbers do not need a client library.
type metrics struct {
	running, cacheHits, cacheMisses, syncedBytes atomic.Int64
}

// registryBytes count what this process received from registries (image
// and cache pulls) and sent to them (pushes and cache exports): every
// registry request goes through go-containerregistry's DefaultTransport,
// which countRegistryBytes wraps once for the process.
var (
	registryPulled, registryPushed atomic.Int64
	countOnce                      sync.Once
)

func countRegistryBytes() {
	countOnce.Do(func() { remote.DefaultTransport = &countingTransport{inner: remote.DefaultTransport} })
}

type countingTransport struct{ inner http.RoundTripper }

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = &countingBody{ReadCloser: req.Body, n: &registryPushed}
	}
	resp, err := t.inner.RoundTrip(req)
	if err == nil && resp.Body != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &registryPulled}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (s *Server) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, g := range []struct {
		name, typ, help string
		v               int64
	}{
		{"builder_builds_running", "gauge", "Builds running now.", s.metrics.running.Load()},
		{"builder_builds_queued", "gauge", "Builds waiting for a slot (--max-builds).", int64(s.queue.queued())},
		{"builder_step_cache_hits_total", "counter", "Steps reused from the cache.", s.metrics.cacheHits.Load()},
		{"builder_step_cache_misses_total", "counter", "Steps that ran.", s.metrics.cacheMisses.Load()},
		{"builder_context_synced_bytes_total", "counter", "Build context bytes uploaded by clients.", s.metrics.syncedBytes.Load()},
		{"builder_registry_pulled_bytes_total", "counter", "Bytes received from registries: image and cache pulls, manifests included.", registryPulled.Load()},
		{"builder_registry_pushed_bytes_total", "counter", "Bytes sent to registries: pushes and cache exports.", registryPushed.Load()},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", g.name, g.help, g.name, g.typ, g.name, g.v)
	}
}
