package gcplan

import (
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
)

// UsageRecord is one line of a disk usage report: a snapshot (its layer
// directory and the compressed blobs recorded for it) or a blob no snapshot
// names (a manifest, a config, or leftover data).
type UsageRecord struct {
	// ID is the snapshot id, or the blob's digest.
	ID string
	// Blob is true for a blob record.
	Blob bool
	// Size is the bytes on disk: the directory's allocated blocks plus
	// its blobs' sizes, or the blob's size.
	Size     int64
	LastUsed time.Time
	// InUse is true when an image of the local store needs the record.
	InUse bool
	// Shared is true when more than one image or cache result builds on
	// the record.
	Shared      bool
	Description string
	Parent      string
}

// DiskUsage is a disk usage report.
type DiskUsage struct {
	Records []UsageRecord
	// Total is every record's size; InUse what images need; Reclaimable
	// the rest, which a prune --all frees.
	Total, InUse, Reclaimable int64
}

// Usage reports g's disk usage, most recently used records first.
func Usage(g *Graph) *DiskUsage {
	inUse, imageBlob := imageUse(g)
	users := snapshotUsers(g)
	du := &DiskUsage{}
	counted := map[digest.Digest]bool{}
	ids := make([]string, 0, len(g.Snapshots))
	for id := range g.Snapshots {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		s := g.Snapshots[id]
		r := UsageRecord{
			ID: id, Size: g.Sizes[id], LastUsed: s.Used(), InUse: inUse[id],
			Shared: len(users[id]) > 1, Description: s.Description, Parent: s.Parent,
		}
		if _, ok := g.Sizes[id]; !ok {
			r.Description += " (layer directory missing)"
		}
		for _, d := range s.Blobs {
			if b, ok := g.Blobs[d.Digest]; ok && !counted[d.Digest] {
				counted[d.Digest] = true
				r.Size += b.Size
			}
		}
		du.Records = append(du.Records, r)
	}
	du.Records = append(du.Records, blobUsage(g, counted, imageBlob)...)
	sort.SliceStable(du.Records, func(i, j int) bool {
		return du.Records[i].LastUsed.After(du.Records[j].LastUsed)
	})
	for _, r := range du.Records {
		du.Total += r.Size
		if r.InUse {
			du.InUse += r.Size
		}
	}
	du.Reclaimable = du.Total - du.InUse
	return du
}

// imageUse returns the snapshots the local store's images need, and the
// name of the first image each of their blobs belongs to.
func imageUse(g *Graph) (map[string]bool, map[digest.Digest]string) {
	inUse := map[string]bool{}
	imageBlob := map[digest.Digest]string{}
	for _, img := range g.Images {
		g.chain(img.Snapshot, func(s string) { inUse[s] = true })
		for _, b := range img.Blobs {
			if _, ok := imageBlob[b]; !ok {
				imageBlob[b] = img.Name
			}
		}
	}
	return inUse, imageBlob
}

// snapshotUsers returns, for each snapshot, the distinct tops (images'
// snapshots and snapshots nothing is built on) whose chains hold it; two
// tags of one image are one user.
func snapshotUsers(g *Graph) map[string]map[string]bool {
	hasChild := map[string]bool{}
	for _, s := range g.Snapshots {
		hasChild[s.Parent] = true
	}
	users := map[string]map[string]bool{}
	addUser := func(top string) {
		g.chain(top, func(s string) {
			if users[s] == nil {
				users[s] = map[string]bool{}
			}
			users[s][top] = true
		})
	}
	for _, img := range g.Images {
		addUser(img.Snapshot)
	}
	for id := range g.Snapshots {
		if !hasChild[id] {
			addUser(id)
		}
	}
	return users
}

// blobUsage returns the records of the blobs not counted with a snapshot,
// by digest.
func blobUsage(g *Graph, counted map[digest.Digest]bool, imageBlob map[digest.Digest]string) []UsageRecord {
	var blobs []digest.Digest
	for d := range g.Blobs {
		if !counted[d] {
			blobs = append(blobs, d)
		}
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i] < blobs[j] })
	var out []UsageRecord
	for _, d := range blobs {
		b := g.Blobs[d]
		r := UsageRecord{ID: d.String(), Blob: true, Size: b.Size, LastUsed: b.ModTime}
		switch name, ok := imageBlob[d]; {
		case ok:
			r.InUse, r.Description = true, "manifest, config or layer of "+name
		case b.Meta:
			r.Description = "manifest or config no image uses"
		default:
			r.Description = "blob nothing refers to"
		}
		out = append(out, r)
	}
	return out
}
