package gcplan

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var now = time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)

func blobDigest(name string) digest.Digest { return digest.FromString(name) }

// fakeGraph builds a Graph from short specs:
//
//	snaps:  "id[<parent] size ageHours [blob=name:size]"
//	keys:   "key=id" (id "" is an empty result)
//	layers: "chain=id"
//	images: "name=id blobs..."
//	blobs:  "name:size[:meta]:ageHours" for blobs no snapshot names
func fakeGraph(t *testing.T, snaps, keys, layers, images, blobs []string) *Graph {
	t.Helper()
	g := &Graph{Snapshots: map[string]cache.Snapshot{}, Sizes: map[string]int64{}, Keys: map[digest.Digest]cache.Result{},
		Layers: map[digest.Digest]string{}, Blobs: map[digest.Digest]Blob{}}
	atoi := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("bad number %q", s)
		}
		return n
	}
	for _, spec := range snaps {
		f := strings.Fields(spec)
		id, parent, _ := strings.Cut(f[0], "<")
		s := cache.Snapshot{ID: id, Parent: parent, Created: now.Add(-1000 * time.Hour), LastUsed: now.Add(-time.Duration(atoi(f[2])) * time.Hour)}
		if f[1] != "-" { // "-": no directory
			g.Sizes[id] = atoi(f[1])
		}
		for _, b := range f[3:] {
			name, size, _ := strings.Cut(strings.TrimPrefix(b, "blob="), ":")
			d := blobDigest(name)
			s.Blobs = map[string]ocispec.Descriptor{"gzip": {Digest: d, Size: atoi(size)}}
			g.Blobs[d] = Blob{Size: atoi(size)}
		}
		g.Snapshots[id] = s
	}
	for _, k := range keys {
		key, id, _ := strings.Cut(k, "=")
		g.Keys[blobDigest(key)] = cache.Result{Snapshot: id, Created: now.Add(-1000 * time.Hour)}
	}
	for _, l := range layers {
		c, id, _ := strings.Cut(l, "=")
		g.Layers[blobDigest(c)] = id
	}
	for _, spec := range images {
		f := strings.Fields(spec)
		name, id, _ := strings.Cut(f[0], "=")
		ref := ImageRef{Name: name, Snapshot: id}
		for _, b := range f[1:] {
			ref.Blobs = append(ref.Blobs, blobDigest(b))
		}
		g.Images = append(g.Images, ref)
	}
	for _, spec := range blobs {
		f := strings.Split(spec, ":")
		b := Blob{Size: atoi(f[1]), ModTime: now.Add(-time.Duration(atoi(f[len(f)-1])) * time.Hour), Meta: len(f) == 4 && f[2] == "meta"}
		g.Blobs[blobDigest(f[0])] = b
	}
	return g
}

func names(ds []digest.Digest, named ...string) []string {
	back := map[digest.Digest]string{}
	for _, n := range named {
		back[blobDigest(n)] = n
	}
	var out []string
	for _, d := range ds {
		if n, ok := back[d]; ok {
			out = append(out, n)
		} else {
			out = append(out, string(d))
		}
	}
	return out
}

// The shared fixture: base layers b1<b2 (layer records), an image "app"
// on b2<a1<a2, an intermediate stage b2<s1 (private, old), a newer cache
// branch b2<c1<c2, and a snapshot o1 no record names.
var (
	gcSnaps = []string{
		"b1 100 1 blob=b1gz:50",
		"b2<b1 200 1 blob=b2gz:80",
		"a1<b2 10 1 blob=a1gz:5",
		"a2<a1 20 1 blob=a2gz:7",
		"s1<b2 1000 72",
		"c1<b2 300 5",
		"c2<c1 400 2",
		"o1 55 100",
	}
	gcKeys   = []string{"kimg=b2", "ka1=a1", "ka2=a2", "ks1=s1", "kc1=c1", "kc2=c2", "kempty="}
	gcLayers = []string{"l1=b1", "l2=b2"}
	gcImages = []string{"app=a2 appmanifest appconfig b1gz b2gz a1gz a2gz"}
	gcBlobs  = []string{"appmanifest:3:meta:1", "appconfig:4:meta:1", "basemanifest:6:meta:300", "baseconfig:8:meta:300", "stray:900:0"}
	allNames = []string{"b1gz", "b2gz", "a1gz", "a2gz", "appmanifest", "appconfig", "basemanifest", "baseconfig", "stray",
		"kimg", "ka1", "ka2", "ks1", "kc1", "kc2", "kempty", "l1", "l2"}
)

func TestCollect(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		leases []Lease
		// want: removed snapshots, keys, layers, blobs
		snaps, keys, layers, blobs []string
	}{
		{
			name:  "prune everything no image needs",
			snaps: []string{"c1", "c2", "o1", "s1"}, keys: []string{"kc1", "kc2", "kempty", "ks1"},
			blobs: []string{"stray"},
		},
		{
			name:   "all also takes manifests and configs of no image",
			policy: Policy{All: true},
			snaps:  []string{"c1", "c2", "o1", "s1"}, keys: []string{"kc1", "kc2", "kempty", "ks1"},
			blobs: []string{"stray", "basemanifest", "baseconfig"},
		},
		{
			name:   "until spares what was used recently",
			policy: Policy{Until: 48 * time.Hour},
			snaps:  []string{"o1", "s1"}, keys: []string{"kempty", "ks1"}, blobs: []string{"stray"},
		},
		{
			name: "keep-storage removes least recently used first",
			// total 3148 (dirs 2085 + blobs 1063); garbage o1 (55) and stray
			// (900) leave 2193; s1 (1000, 72h) leaves 1193 <= 2000.
			policy: Policy{KeepStorage: 2000},
			snaps:  []string{"o1", "s1"}, keys: []string{"ks1"}, blobs: []string{"stray"},
		},
		{
			name: "keep-storage goes on to newer cache, leaves first",
			// after s1: 1193; c1 (used 5h ago) goes next, taking c2 (built
			// on it) with it: 493.
			policy: Policy{KeepStorage: 1000},
			snaps:  []string{"c1", "c2", "o1", "s1"}, keys: []string{"kc1", "kc2", "ks1"}, blobs: []string{"stray"},
		},
		{
			name: "keep-storage at last takes unreferenced manifests, oldest first",
			// all cache gone leaves 493: the image's 479 and the base
			// image's manifest (6) and config (8), which go oldest first.
			policy: Policy{KeepStorage: 480},
			snaps:  []string{"c1", "c2", "o1", "s1"}, keys: []string{"kc1", "kc2", "ks1"},
			blobs: []string{"stray", "basemanifest", "baseconfig"},
		},
		{
			name:   "a lease keeps a branch, its chain and its blobs",
			policy: Policy{All: true},
			leases: []Lease{{Keys: []digest.Digest{blobDigest("kc2")}, Blobs: []digest.Digest{blobDigest("baseconfig")}}},
			snaps:  []string{"o1", "s1"}, keys: []string{"kempty", "ks1"}, blobs: []string{"stray", "basemanifest"},
		},
		{
			name:   "a lease by snapshot keeps its chain",
			leases: []Lease{{Snapshots: []string{"c1"}}},
			snaps:  []string{"c2", "o1", "s1"}, keys: []string{"kc2", "kempty", "ks1"}, blobs: []string{"stray"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := fakeGraph(t, gcSnaps, gcKeys, gcLayers, gcImages, gcBlobs)
			plan := Collect(g, tt.policy, tt.leases, now)
			check := func(what string, got, want []string) {
				t.Helper()
				gs, ws := append([]string(nil), got...), append([]string(nil), want...)
				sortStrings(gs)
				sortStrings(ws)
				if len(gs) == 0 && len(ws) == 0 {
					return
				}
				if !reflect.DeepEqual(gs, ws) {
					t.Errorf("Collect(%+v) removes %s %v, want %v", tt.policy, what, gs, ws)
				}
			}
			check("snapshots", plan.Snapshots, tt.snaps)
			check("keys", names(plan.Keys, allNames...), tt.keys)
			check("layers", names(plan.Layers, allNames...), tt.layers)
			check("blobs", names(plan.Blobs, allNames...), tt.blobs)
			// Freed is exactly what the removed records occupy.
			var want int64
			for _, id := range plan.Snapshots {
				want += g.Sizes[id]
			}
			for _, d := range plan.Blobs {
				want += g.Blobs[d].Size
			}
			if plan.Freed != want || plan.Total != 3148 {
				t.Errorf("Freed, Total = %d, %d; want %d, 3148", plan.Freed, plan.Total, want)
			}
			// Nothing the image needs is ever planned.
			for _, id := range plan.Snapshots {
				if id == "a1" || id == "a2" || id == "b1" || id == "b2" {
					t.Errorf("plan removes %s of the image's chain", id)
				}
			}
		})
	}
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

func TestCollectBrokenAndDangling(t *testing.T) {
	// x2's directory is gone: x2 and x3 built on it go, whatever the
	// policy; a key naming a missing snapshot and a layer record of one go.
	g := fakeGraph(t,
		[]string{"x1 10 1", "x2<x1 - 1", "x3<x2 30 1", "y1 10 1"},
		[]string{"k1=x1", "k2=x2", "k3=x3", "kgone=zz", "ky=y1"},
		[]string{"lgone=zz"}, nil, nil)
	plan := Collect(g, Policy{Until: 24 * time.Hour}, nil, now)
	if want := []string{"x2", "x3"}; !reflect.DeepEqual(plan.Snapshots, want) {
		t.Errorf("Collect removes snapshots %v, want %v", plan.Snapshots, want)
	}
	got := names(plan.Keys, "k1", "k2", "k3", "kgone", "ky")
	sortStrings(got)
	if want := []string{"k2", "k3", "kgone"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Collect removes keys %v, want %v", got, want)
	}
	if len(plan.Layers) != 1 {
		t.Errorf("Collect removes layers %v, want the dangling one", plan.Layers)
	}
}

func TestUsage(t *testing.T) {
	g := fakeGraph(t, gcSnaps, gcKeys, gcLayers, gcImages, gcBlobs)
	du := Usage(g)
	if du.Total != g.Total() {
		t.Errorf("Usage total = %d, graph total %d", du.Total, g.Total())
	}
	// In use: b1 150, b2 280, a1 15, a2 27, manifest 3, config 4.
	if du.InUse != 479 || du.Reclaimable != du.Total-479 {
		t.Errorf("Usage in use, reclaimable = %d, %d; want 479, %d", du.InUse, du.Reclaimable, du.Total-479)
	}
	by := map[string]UsageRecord{}
	for _, r := range du.Records {
		by[r.ID] = r
	}
	for _, c := range []struct {
		id            string
		size          int64
		inUse, shared bool
	}{
		{"b1", 150, true, true}, {"b2", 280, true, true}, {"a1", 15, true, false}, {"a2", 27, true, false},
		{"s1", 1000, false, false}, {"c1", 300, false, false}, {"o1", 55, false, false},
		{blobDigest("stray").String(), 900, false, false}, {blobDigest("appconfig").String(), 4, true, false},
	} {
		r, ok := by[c.id]
		if !ok {
			t.Errorf("Usage has no record %s", c.id)
			continue
		}
		if r.Size != c.size || r.InUse != c.inUse || r.Shared != c.shared {
			t.Errorf("Usage record %s = size %d in use %v shared %v; want %d %v %v", c.id, r.Size, r.InUse, r.Shared, c.size, c.inUse, c.shared)
		}
	}
	if n := len(du.Records); n != 8+5 {
		t.Errorf("Usage has %d records, want 13 (8 snapshots, 5 blobs no snapshot names)", n)
	}
}

func TestCollectSparesWhatALeaseMayNotNameYet(t *testing.T) {
	g := fakeGraph(t, []string{"old 10 100", "new 10 0"}, nil, nil, nil, []string{"oldblob:5:100", "newblob:5:0"})
	s := g.Snapshots["new"]
	s.Created = now
	g.Snapshots["new"] = s
	since := now.Add(-time.Minute)
	plan := Collect(g, Policy{All: true}, []Lease{{Since: since}}, now)
	if !slices.Equal(plan.Snapshots, []string{"old"}) {
		t.Errorf("Collect removes snapshots %v, want only the one made before the lease", plan.Snapshots)
	}
	if !slices.Equal(plan.Blobs, []digest.Digest{blobDigest("oldblob")}) {
		t.Errorf("Collect removes blobs %v, want only the one written before the lease", plan.Blobs)
	}
}

// TestCollectMarksSinceTheEarliestLease: with several leases, what was made
// since the earliest began is spared, whichever order the leases come in
// (a lease without a start in between).
func TestCollectMarksSinceTheEarliestLease(t *testing.T) {
	g := fakeGraph(t, []string{"old 10 100", "mid 10 0", "new<mid 10 0"}, []string{"kmid=mid"}, nil, nil,
		[]string{"oldblob:5:100", "midblob:5:0"})
	made := map[string]time.Time{"old": now.Add(-3 * time.Hour), "mid": now.Add(-90 * time.Minute), "new": now}
	for id, at := range made {
		s := g.Snapshots[id]
		s.Created = at
		g.Snapshots[id] = s
	}
	g.Keys[blobDigest("kmid")] = cache.Result{Snapshot: "mid", Created: made["mid"]}
	b := g.Blobs[blobDigest("midblob")]
	b.ModTime = made["mid"]
	g.Blobs[blobDigest("midblob")] = b
	leases := []Lease{{Since: now.Add(-time.Hour)}, {Snapshots: []string{"new"}}, {Since: now.Add(-2 * time.Hour)}}
	plan := Collect(g, Policy{All: true}, leases, now)
	if !slices.Equal(plan.Snapshots, []string{"old"}) || len(plan.Keys) != 0 {
		t.Errorf("Collect removes snapshots %v and keys %v, want only snapshot old (made before every lease)", plan.Snapshots, plan.Keys)
	}
	if !slices.Equal(plan.Blobs, []digest.Digest{blobDigest("oldblob")}) {
		t.Errorf("Collect removes blobs %v, want only the one written before every lease", plan.Blobs)
	}
}

// TestCollectTiesChildFirst: a chain last used at one time (Touch gives a
// chain one time) loses its top first, not its base with everything on it.
func TestCollectTiesChildFirst(t *testing.T) {
	g := fakeGraph(t, []string{"a 100 5", "b<a 10 5", "c<b 10 5"}, []string{"ka=a", "kb=b", "kc=c"}, nil, nil, nil)
	plan := Collect(g, Policy{KeepStorage: 110}, nil, now)
	if !slices.Equal(plan.Snapshots, []string{"c"}) {
		t.Errorf("Collect over the limit by one top layer removes %v, want [c]", plan.Snapshots)
	}
}
