// Package gcplan plans the garbage collection of a state directory. It
// works on a Graph, a copy of the state's metadata (package cache's
// records) with the sizes of what is on disk, and returns a Plan; the
// caller (package gc) deletes. Collect is a pure function in the manner
// of a tricolor mark and sweep: roots (the local image store's images and
// the leases of running builds) mark their snapshot chains and blobs, and
// only what is unmarked may go. Usage reports disk use from the same Graph.
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
package gcplan

import (
	"slices"
	"sort"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/coord"
	"github.com/opencontainers/go-digest"
)

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
// snapshots and of its keys' results, its keys, and its blobs. Its Since,
// when set, also protects every snapshot, key and blob made at or after
// it: another process's build may not have recorded yet what names them
// (a blob exported before its snapshot record says so, an image's
// manifest before the image is named). It is what a lease file holds, so
// cache.DB.Leases returns it as it reads it.
type Lease = coord.Held

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
	Snapshots map[string]cache.Snapshot
	// Sizes are the bytes of each snapshot's layer directory; a snapshot
	// missing from Sizes has no directory on disk.
	Sizes  map[string]int64
	Keys   map[digest.Digest]cache.Result
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

// markChain adds id and its ancestors to set, stopping at a missing
// record or at one in set already, whose ancestors are then in it too
// when set is only filled here: marking every chain walks each snapshot
// once, not once per snapshot above it.
func (g *Graph) markChain(set map[string]bool, id string) {
	for cur := id; cur != "" && !set[cur]; {
		s, ok := g.Snapshots[cur]
		if !ok {
			return
		}
		set[cur] = true
		cur = s.Parent
	}
}

// Collect plans a prune of g under policy p at time now; nothing in leases
// and nothing an image needs is removed. Its phases are those listed at
// the top of this file.
func Collect(g *Graph, p Policy, leases []Lease, now time.Time) *Plan {
	c := newCollector(g, p, now)
	c.mark(leases)
	ids := make([]string, 0, len(g.Snapshots))
	for id := range g.Snapshots {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	c.removeGarbage(ids)
	c.applyPolicy(ids)
	c.planRecords()
	c.planBlobs()
	plan := c.plan
	slices.Sort(plan.Keys)
	slices.Sort(plan.Layers)
	slices.Sort(plan.Snapshots)
	slices.Sort(plan.Blobs)
	return plan
}

// collector is the state of one Collect.
type collector struct {
	g    *Graph
	p    Policy
	plan *Plan
	// cutoff is the time before which Policy.Until lets records go.
	cutoff time.Time
	// marked are the snapshots in the chains of roots.
	marked    map[string]bool
	keepBlob  map[digest.Digest]bool
	leasedKey map[digest.Digest]bool
	children  map[string][]string
	// blobOwners counts the snapshots not removed that name each blob.
	blobOwners map[digest.Digest]int
	removed    map[string]bool
	// remaining is the total size left after what is planned so far.
	remaining  int64
	brokenMemo map[string]bool
	depths     map[string]int
}

func newCollector(g *Graph, p Policy, now time.Time) *collector {
	c := &collector{
		g: g, p: p, plan: &Plan{Total: g.Total()},
		marked: map[string]bool{}, keepBlob: map[digest.Digest]bool{}, leasedKey: map[digest.Digest]bool{},
		children: map[string][]string{}, blobOwners: map[digest.Digest]int{},
		removed: map[string]bool{}, brokenMemo: map[string]bool{}, depths: map[string]int{},
	}
	if p.Until > 0 {
		c.cutoff = now.Add(-p.Until)
	}
	for id, s := range g.Snapshots {
		if s.Parent != "" {
			c.children[s.Parent] = append(c.children[s.Parent], id)
		}
	}
	// The blobs a snapshot's removal may free are its layer blobs that
	// no image or lease keeps.
	for _, s := range g.Snapshots {
		for _, d := range s.Blobs {
			c.blobOwners[d.Digest]++
		}
	}
	return c
}

// mark marks the roots, images and leases, the chains they stand on and
// the blobs they keep; then it starts the running total, less the layer
// data that goes under any policy.
func (c *collector) mark(leases []Lease) {
	mark := c.markChain
	for _, img := range c.g.Images {
		mark(img.Snapshot)
		for _, b := range img.Blobs {
			c.keepBlob[b] = true
		}
	}
	// What was made after the earliest lease began is kept: one walk,
	// since each later lease's set is part of it.
	var since time.Time
	for _, l := range leases {
		if !l.Since.IsZero() && (since.IsZero() || l.Since.Before(since)) {
			since = l.Since
		}
		for _, id := range l.Snapshots {
			mark(id)
		}
		for _, k := range l.Keys {
			c.leasedKey[k] = true
			if r, ok := c.g.Keys[k]; ok {
				mark(r.Snapshot)
			}
		}
		for _, b := range l.Blobs {
			c.keepBlob[b] = true
		}
	}
	if !since.IsZero() {
		c.markSince(since)
	}
	c.remaining = c.plan.Total
	// Layer data no snapshot names goes whatever the policy.
	for d, b := range c.g.Blobs {
		if c.blobOwners[d] == 0 && !c.keepBlob[d] && !b.Meta {
			c.remaining -= b.Size
		}
	}
}

// markSince marks what was made at or after t.
func (c *collector) markSince(t time.Time) {
	mark := c.markChain
	for id, s := range c.g.Snapshots {
		if !s.Created.Before(t) {
			mark(id)
		}
	}
	for k, r := range c.g.Keys {
		if !r.Created.Before(t) {
			c.leasedKey[k] = true
			mark(r.Snapshot)
		}
	}
	for d, b := range c.g.Blobs {
		if !b.ModTime.Before(t) {
			c.keepBlob[d] = true
		}
	}
}

// markChain marks id and its ancestors.
func (c *collector) markChain(id string) { c.g.markChain(c.marked, id) }

// removeTree plans the removal of id and every snapshot built on it,
// unless marked.
func (c *collector) removeTree(id string) {
	if c.removed[id] || c.marked[id] {
		return
	}
	c.removed[id] = true
	c.remaining -= c.g.Sizes[id]
	for _, d := range c.g.Snapshots[id].Blobs {
		c.blobOwners[d.Digest]--
		if b, ok := c.g.Blobs[d.Digest]; ok && c.blobOwners[d.Digest] == 0 && !c.keepBlob[d.Digest] {
			c.remaining -= b.Size
		}
	}
	for _, ch := range c.children[id] {
		c.removeTree(ch)
	}
}

// removeGarbage is phase 1: snapshots that no record needs, or whose
// directory or some ancestor is gone.
func (c *collector) removeGarbage(ids []string) {
	// needed: in the chain of some record at all.
	needed := map[string]bool{}
	for _, r := range c.g.Keys {
		c.g.markChain(needed, r.Snapshot)
	}
	for _, id := range c.g.Layers {
		c.g.markChain(needed, id)
	}
	for id := range c.marked {
		needed[id] = true
	}
	for _, id := range ids {
		if !needed[id] || c.broken(id, 0) {
			c.removeTree(id)
		}
	}
}

// broken reports a snapshot whose layer directory, or some ancestor's
// record or directory, is missing.
func (c *collector) broken(id string, depth int) bool {
	if v, ok := c.brokenMemo[id]; ok {
		return v
	}
	s := c.g.Snapshots[id]
	_, hasDir := c.g.Sizes[id]
	b := !hasDir
	if !b && s.Parent != "" {
		_, ok := c.g.Snapshots[s.Parent]
		b = !ok || depth > 10000 || c.broken(s.Parent, depth+1)
	}
	c.brokenMemo[id] = b
	return b
}

// eligible reports whether something last used at t may go under
// Policy.Until.
func (c *collector) eligible(t time.Time) bool { return c.p.Until <= 0 || t.Before(c.cutoff) }

// applyPolicy is phase 2: the unmarked snapshots the policy selects.
func (c *collector) applyPolicy(ids []string) {
	g := c.g
	var cands []string
	for _, id := range ids {
		if !c.marked[id] && !c.removed[id] && c.eligible(g.Snapshots[id].Used()) {
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
		return c.depth(cands[i]) > c.depth(cands[j])
	})
	for _, id := range cands {
		if c.p.KeepStorage > 0 && c.remaining <= c.p.KeepStorage {
			break
		}
		c.removeTree(id)
	}
}

// planRecords is phase 3: the records whose result is gone, and the
// removed snapshots themselves.
func (c *collector) planRecords() {
	g, p, plan := c.g, c.p, c.plan
	for k, r := range g.Keys {
		if c.leasedKey[k] {
			continue
		}
		_, exists := g.Snapshots[r.Snapshot]
		switch {
		case r.Snapshot != "" && (!exists || c.removed[r.Snapshot]):
			plan.Keys = append(plan.Keys, k)
		case r.Snapshot == "" && (p.All || (p.KeepStorage <= 0 && c.eligible(r.Used()))):
			// An empty result costs nothing on disk; only a prune of
			// everything eligible takes it.
			plan.Keys = append(plan.Keys, k)
		}
	}
	for l, id := range g.Layers {
		if _, exists := g.Snapshots[id]; !exists || c.removed[id] {
			plan.Layers = append(plan.Layers, l)
		}
	}
	for id := range c.removed {
		plan.Snapshots = append(plan.Snapshots, id)
		plan.Freed += g.Sizes[id]
	}
}

// planBlobs is phase 4: layer blobs of removed snapshots and blobs
// nothing names; manifests and configs with All, or oldest first while
// over KeepStorage.
func (c *collector) planBlobs() {
	g, p, plan := c.g, c.p, c.plan
	for id, s := range g.Snapshots {
		if !c.removed[id] {
			for _, d := range s.Blobs {
				c.keepBlob[d.Digest] = true
			}
		}
	}
	var metas []digest.Digest
	for d, b := range g.Blobs {
		switch {
		case c.keepBlob[d]:
		case !b.Meta:
			plan.Blobs = append(plan.Blobs, d)
			plan.Freed += b.Size
		default:
			metas = append(metas, d)
		}
	}
	sort.Slice(metas, func(i, j int) bool {
		bi, bj := g.Blobs[metas[i]], g.Blobs[metas[j]]
		if !bi.ModTime.Equal(bj.ModTime) {
			return bi.ModTime.Before(bj.ModTime)
		}
		return metas[i] < metas[j]
	})
	for _, d := range metas {
		b := g.Blobs[d]
		if !p.All && (p.KeepStorage <= 0 || c.remaining <= p.KeepStorage || !c.eligible(b.ModTime)) {
			continue
		}
		plan.Blobs = append(plan.Blobs, d)
		plan.Freed += b.Size
		c.remaining -= b.Size
	}
}

// depth is the length of id's chain, memoized: the least-recently-used
// order asks it of both sides of every tie. A chain with a loop, which
// phase 1 removed, stops after more steps than there are snapshots.
func (c *collector) depth(id string) int {
	var path []string
	n := 0
	for cur := id; cur != ""; {
		if d, ok := c.depths[cur]; ok {
			n = d
			break
		}
		s, ok := c.g.Snapshots[cur]
		if !ok || len(path) > len(c.g.Snapshots) {
			break
		}
		path = append(path, cur)
		cur = s.Parent
	}
	for i := len(path) - 1; i >= 0; i-- {
		n++
		c.depths[path[i]] = n
	}
	return c.depths[id]
}
