package cache

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// GC works on a Graph, a copy of the state's metadata with the sizes of what
// is on disk, and returns a Plan; the caller deletes. It is a pure function
// in the manner of a tricolor mark and sweep: roots (the local image
// store's images and the leases of running builds) mark their snapshot
// chains and blobs, and only what is unmarked may go.
//
// What a prune removes, in order:
//
//  1. snapshots that no record needs (no cache key, base-image layer,
//     image or lease has them in its chain) and snapshots whose layer
//     directory or some ancestor is gone: garbage under any policy;
//  2. unmarked snapshots the policy selects, each with every snapshot built
//     on it: all of them, those unused for Policy.Until, or least recently
//     used first until the total is at most Policy.KeepStorage;
//  3. the cache key and base-layer records whose result is gone;
//  4. layer blobs of removed snapshots and blobs nothing names; manifests
//     and configs no image references (resolved base images, replaced
//     images) only with Policy.All, or last when over Policy.KeepStorage.

// Policy selects what a prune may remove of what no root needs.
type Policy struct {
	// All also removes manifests and configs that no image references.
	All bool
	// Until, when positive, spares everything used within that duration.
	Until time.Duration
	// KeepStorage, when positive, removes least recently used records only
	// until the total size is at most this many bytes.
	KeepStorage int64
}

// Lease protects what a running build uses from a GC: the chains of its
// snapshots and of its keys' results, its keys, and its blobs.
type Lease struct {
	Snapshots []string
	Keys      []digest.Digest
	Blobs     []digest.Digest
}

// ImageRef is an image of the local store as GC sees it.
type ImageRef struct {
	Name     string
	Snapshot string
	// Blobs are its manifest, config and layers.
	Blobs []digest.Digest
}

// Blob is a blob of the content store.
type Blob struct {
	Size int64
	// Meta marks a manifest or config (a small JSON document) that no
	// snapshot record names, as opposed to layer data.
	Meta    bool
	ModTime time.Time
}

// Graph is what GC and du look at.
type Graph struct {
	Snapshots map[string]Snapshot
	// Sizes are the bytes of each snapshot's layer directory; a snapshot
	// missing from Sizes has no directory on disk.
	Sizes  map[string]int64
	Keys   map[digest.Digest]Result
	Layers map[digest.Digest]string
	Images []ImageRef
	Blobs  map[digest.Digest]Blob
}

// Plan is what a prune removes: records first, then files.
type Plan struct {
	Keys      []digest.Digest
	Layers    []digest.Digest
	Snapshots []string
	Blobs     []digest.Digest
	// Freed is the bytes of the removed directories and blobs.
	Freed int64
	// Total is the size of everything before the prune.
	Total int64
}

// Total is the bytes of every layer directory and blob of g.
func (g *Graph) Total() int64 {
	var n int64
	for _, s := range g.Sizes {
		n += s
	}
	for _, b := range g.Blobs {
		n += b.Size
	}
	return n
}

// chain calls fn on id and its ancestors, stopping at a missing record or
// a loop.
func (g *Graph) chain(id string, fn func(string)) {
	seen := map[string]bool{}
	for cur := id; cur != "" && !seen[cur]; {
		seen[cur] = true
		s, ok := g.Snapshots[cur]
		if !ok {
			return
		}
		fn(cur)
		cur = s.Parent
	}
}

// Collect plans a prune of g under policy p at time now; nothing in leases
// and nothing an image needs is removed.
func Collect(g *Graph, p Policy, leases []Lease, now time.Time) *Plan {
	plan := &Plan{Total: g.Total()}

	// Mark: roots and the chains they stand on.
	marked := map[string]bool{}
	mark := func(id string) { g.chain(id, func(s string) { marked[s] = true }) }
	keepBlob := map[digest.Digest]bool{}
	leasedKey := map[digest.Digest]bool{}
	for _, img := range g.Images {
		mark(img.Snapshot)
		for _, b := range img.Blobs {
			keepBlob[b] = true
		}
	}
	for _, l := range leases {
		for _, id := range l.Snapshots {
			mark(id)
		}
		for _, k := range l.Keys {
			leasedKey[k] = true
			if r, ok := g.Keys[k]; ok {
				mark(r.Snapshot)
			}
		}
		for _, b := range l.Blobs {
			keepBlob[b] = true
		}
	}

	// needed: in the chain of some record at all.
	needed := map[string]bool{}
	for _, r := range g.Keys {
		g.chain(r.Snapshot, func(s string) { needed[s] = true })
	}
	for _, id := range g.Layers {
		g.chain(id, func(s string) { needed[s] = true })
	}
	for id := range marked {
		needed[id] = true
	}

	children := map[string][]string{}
	for id, s := range g.Snapshots {
		if s.Parent != "" {
			children[s.Parent] = append(children[s.Parent], id)
		}
	}
	// ownBlobs are the blobs a snapshot's removal may free: its layer
	// blobs that no image or lease keeps.
	blobOwners := map[digest.Digest]int{}
	for _, s := range g.Snapshots {
		for _, d := range s.Blobs {
			blobOwners[d.Digest]++
		}
	}

	removed := map[string]bool{}
	remaining := plan.Total
	// Layer data no snapshot names goes whatever the policy.
	for d, b := range g.Blobs {
		if blobOwners[d] == 0 && !keepBlob[d] && !b.Meta {
			remaining -= b.Size
		}
	}

	var removeTree func(id string)
	removeTree = func(id string) {
		if removed[id] || marked[id] {
			return
		}
		removed[id] = true
		remaining -= g.Sizes[id]
		for _, d := range g.Snapshots[id].Blobs {
			blobOwners[d.Digest]--
			if b, ok := g.Blobs[d.Digest]; ok && blobOwners[d.Digest] == 0 && !keepBlob[d.Digest] {
				remaining -= b.Size
			}
		}
		for _, c := range children[id] {
			removeTree(c)
		}
	}

	// 1. Garbage: unneeded or broken.
	var broken func(id string, depth int) bool
	brokenMemo := map[string]bool{}
	broken = func(id string, depth int) bool {
		if v, ok := brokenMemo[id]; ok {
			return v
		}
		s := g.Snapshots[id]
		_, hasDir := g.Sizes[id]
		b := !hasDir
		if !b && s.Parent != "" {
			_, ok := g.Snapshots[s.Parent]
			b = !ok || depth > 10000 || broken(s.Parent, depth+1)
		}
		brokenMemo[id] = b
		return b
	}
	ids := make([]string, 0, len(g.Snapshots))
	for id := range g.Snapshots {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if !needed[id] || broken(id, 0) {
			removeTree(id)
		}
	}

	// 2. Policy.
	cutoff := time.Time{}
	if p.Until > 0 {
		cutoff = now.Add(-p.Until)
	}
	eligible := func(t time.Time) bool { return p.Until <= 0 || t.Before(cutoff) }
	var cands []string
	for _, id := range ids {
		if !marked[id] && !removed[id] && eligible(g.Snapshots[id].Used()) {
			cands = append(cands, id)
		}
	}
	// Least recently used first; among equals, children before parents
	// (a parent is touched whenever its child is, so it is never older)
	// and then by id, for a stable plan.
	sort.SliceStable(cands, func(i, j int) bool {
		ti, tj := g.Snapshots[cands[i]].Used(), g.Snapshots[cands[j]].Used()
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return depthOf(g, cands[i]) > depthOf(g, cands[j])
	})
	for _, id := range cands {
		if p.KeepStorage > 0 && remaining <= p.KeepStorage {
			break
		}
		removeTree(id)
	}

	// 3. Records whose result is gone.
	for k, r := range g.Keys {
		if leasedKey[k] {
			continue
		}
		_, exists := g.Snapshots[r.Snapshot]
		switch {
		case r.Snapshot != "" && (!exists || removed[r.Snapshot]):
			plan.Keys = append(plan.Keys, k)
		case r.Snapshot == "" && (p.All || (p.KeepStorage <= 0 && eligible(r.Used()))):
			// An empty result costs nothing on disk; only a prune of
			// everything eligible takes it.
			plan.Keys = append(plan.Keys, k)
		}
	}
	for l, id := range g.Layers {
		if _, exists := g.Snapshots[id]; !exists || removed[id] {
			plan.Layers = append(plan.Layers, l)
		}
	}
	for id := range removed {
		plan.Snapshots = append(plan.Snapshots, id)
		plan.Freed += g.Sizes[id]
	}

	// 4. Blobs.
	for id, s := range g.Snapshots {
		if !removed[id] {
			for _, d := range s.Blobs {
				keepBlob[d.Digest] = true
			}
		}
	}
	var metas []digest.Digest
	for d, b := range g.Blobs {
		switch {
		case keepBlob[d]:
		case !b.Meta:
			plan.Blobs = append(plan.Blobs, d)
			plan.Freed += b.Size
		default:
			metas = append(metas, d)
		}
	}
	// Manifests and configs: all with All, oldest first while over
	// KeepStorage, none otherwise.
	sort.Slice(metas, func(i, j int) bool {
		bi, bj := g.Blobs[metas[i]], g.Blobs[metas[j]]
		if !bi.ModTime.Equal(bj.ModTime) {
			return bi.ModTime.Before(bj.ModTime)
		}
		return metas[i] < metas[j]
	})
	for _, d := range metas {
		b := g.Blobs[d]
		if !p.All && (p.KeepStorage <= 0 || remaining <= p.KeepStorage || !eligible(b.ModTime)) {
			continue
		}
		plan.Blobs = append(plan.Blobs, d)
		plan.Freed += b.Size
		remaining -= b.Size
	}

	slices.Sort(plan.Keys)
	slices.Sort(plan.Layers)
	slices.Sort(plan.Snapshots)
	slices.Sort(plan.Blobs)
	return plan
}

// Used returns when r was last used, or created if never used since.
func (r Result) Used() time.Time {
	if r.LastUsed.IsZero() {
		return r.Created
	}
	return r.LastUsed
}

func depthOf(g *Graph, id string) int {
	n := 0
	g.chain(id, func(string) { n++ })
	return n
}

// Short shortens a blob digest or snapshot id for tables.
func Short(id string) string {
	if _, enc, ok := strings.Cut(id, ":"); ok && len(enc) > 12 {
		return enc[:12]
	}
	return id
}
