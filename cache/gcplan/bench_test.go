package gcplan

import (
	"strconv"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// bigGraph is a state dir after many builds: chains of depth snapshots,
// made one per minute, each with a cache key and a layer blob.
func bigGraph(chains, depth int) *Graph {
	g := &Graph{Snapshots: map[string]cache.Snapshot{}, Sizes: map[string]int64{}, Keys: map[digest.Digest]cache.Result{},
		Layers: map[digest.Digest]string{}, Blobs: map[digest.Digest]Blob{}}
	n := 0
	for range chains {
		parent := ""
		for range depth {
			n++
			id := strconv.Itoa(n)
			t := now.Add(-time.Duration(chains*depth-n) * time.Minute)
			d := blobDigest("blob" + id)
			g.Snapshots[id] = cache.Snapshot{ID: id, Parent: parent, Created: t,
				Blobs: map[string]ocispec.Descriptor{"gzip": {Digest: d, Size: 10}}}
			g.Sizes[id] = 100
			g.Blobs[d] = Blob{Size: 10, ModTime: t}
			g.Keys[blobDigest("key"+id)] = cache.Result{Snapshot: id, Created: t}
			parent = id
		}
	}
	return g
}

// BenchmarkCollectLeases is a prune while 8 builds run, which began over
// the last half of the state's history (each build's lease protects what
// was made since it began).
func BenchmarkCollectLeases(b *testing.B) {
	g := bigGraph(500, 20)
	var leases []Lease
	for i := range 8 {
		leases = append(leases, Lease{Since: now.Add(-time.Duration(5000-i*600) * time.Minute)})
	}
	for b.Loop() {
		Collect(g, Policy{All: true}, leases, now)
	}
}

// BenchmarkCollectKeepStorage is an automatic GC over its limit: every
// chain was last used by one build (Touch gives a chain one time), so the
// least-recently-used order has many ties, broken by depth.
func BenchmarkCollectKeepStorage(b *testing.B) {
	g := bigGraph(500, 20)
	for id, s := range g.Snapshots {
		n, _ := strconv.Atoi(id)
		s.LastUsed = now.Add(-time.Duration((n-1)/20) * time.Minute)
		g.Snapshots[id] = s
	}
	for b.Loop() {
		Collect(g, Policy{KeepStorage: 1}, nil, now)
	}
}
