package server

import (
	"fmt"
	"net/http"
	"sync/atomic"
)

// metrics are the counters /metrics exposes, written in the Prometheus
// text format by hand: five numbers do not need a client library.
type metrics struct {
	running, cacheHits, cacheMisses, syncedBytes atomic.Int64
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
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", g.name, g.help, g.name, g.typ, g.name, g.v)
	}
}
