package gc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/gcplan"
	"github.com/builder-dev/builder/cache/usage"
	"github.com/builder-dev/builder/imagestore"
	"github.com/builder-dev/builder/kept"
	"github.com/opencontainers/go-digest"
)

// PruneOptions select what Prune removes of the build cache. Nothing an
// image of the local store needs is ever removed.
type PruneOptions struct {
	// All also removes manifests and configs no image references (those
	// of resolved base images and of replaced images).
	All bool
	// Until spares what was used within that duration.
	Until time.Duration
	// KeepStorage removes least recently used cache first until the total
	// is at most this many bytes.
	KeepStorage int64
	// DryRun only reports what would be removed.
	DryRun bool
}

// PruneReport says what Prune removed (or, on a dry run, would remove).
type PruneReport struct {
	Snapshots, Keys, Blobs int
	// Kept is the failed steps' filesystems (--on-error=keep) removed.
	Kept int
	// Projects is the context directories of builder serve removed.
	Projects int
	// FileSums is the records of context file digests removed (files
	// gone or changed, contexts unused or over the bound).
	FileSums int
	// Freed is the bytes of the removed layer directories and blobs.
	Freed int64
	// Before and After are the total sizes around the prune.
	Before, After int64
}

// DiskUsage reports what the build cache and the local image store occupy.
func (s *Collector) DiskUsage(ctx context.Context) (*gcplan.DiskUsage, error) {
	g, _, err := s.graph(ctx, nil)
	if err != nil {
		return nil, err
	}
	failures, err := s.Kept.List()
	addKeptRoots(g, failures)
	if err != nil {
		return nil, err
	}
	du := gcplan.Usage(g)
	if err := s.addCacheMountUsage(du); err != nil {
		return nil, err
	}
	if err := s.addProjectUsage(du); err != nil {
		return nil, err
	}
	return du, nil
}

// Prune removes build cache that no image of the local store and no build
// running in this process needs, as opt selects.
func (s *Collector) Prune(ctx context.Context, opt PruneOptions) (*PruneReport, error) {
	total, err := usage.Total(s.DB)
	if err != nil {
		return nil, err
	}
	projects := &PruneReport{}
	left, err := s.pruneProjects(opt, total, projects)
	if err != nil {
		return nil, err
	}
	if opt.KeepStorage > 0 {
		opt.KeepStorage = max(opt.KeepStorage-left, 1)
	}
	rep, err := s.prune(ctx, opt, s.leases.all(), true)
	if rep != nil {
		rep.Projects, rep.Freed = projects.Projects, rep.Freed+projects.Freed
		rep.Before, rep.After = rep.Before+projects.Before, rep.After+projects.After
	}
	if err == nil && opt.All {
		err = s.pruneCacheMounts(ctx, rep, opt.DryRun)
	}
	if err == nil && !opt.DryRun {
		// The file digest memory, which nothing else removes (a CI job's
		// checkout directory per build); opt.Until is how long a build
		// context no build used keeps its records.
		var pruned cache.FileSumsPruned
		pruned, err = s.DB.FileSums().Prune(cache.FileSumsPolicy{MaxAge: opt.Until})
		rep.FileSums = pruned.Files + pruned.Trees
	}
	return rep, err
}

// prune removes what opt selects; with dropKept the kept failures
// (--on-error=keep) go too, as `builder prune` does, where the automatic GC
// keeps them.
func (s *Collector) prune(ctx context.Context, opt PruneOptions, ls []gcplan.Lease, dropKept bool) (*PruneReport, error) {
	// Layer directories are measured first, without holding the
	// database: walking them is slow.
	measured, unmeasured, err := s.graph(ctx, nil)
	if err != nil {
		return nil, err
	}
	for id := range unmeasured {
		delete(measured.Sizes, id) // tried again under the hold
	}
	// Then the plan and the removal under the database, with the leases
	// of builds in other processes: a build elsewhere finds a record
	// (leasing it) before, or finds it gone.
	var rep *PruneReport
	err = s.DB.Hold(func() error {
		others, err := s.DB.Leases()
		if err != nil {
			return err
		}
		rep, err = s.pruneHeld(ctx, opt, append(ls, others...), dropKept, measured.Sizes)
		return err
	})
	return rep, err
}

// pruneHeld is prune once the database is held; sizes are those already
// measured.
func (s *Collector) pruneHeld(ctx context.Context, opt PruneOptions, ls []gcplan.Lease, dropKept bool, sizes map[string]int64) (*PruneReport, error) {
	g, unmeasured, err := s.graph(ctx, sizes)
	if err != nil {
		return nil, err
	}
	failures, err := s.Kept.List()
	if err != nil {
		return nil, err
	}
	if !dropKept {
		addKeptRoots(g, failures)
	}
	plan := gcplan.Collect(g, gcplan.Policy{All: opt.All, Until: opt.Until, KeepStorage: opt.KeepStorage}, ls, time.Now())
	rep := &PruneReport{
		Snapshots: len(plan.Snapshots), Keys: len(plan.Keys), Blobs: len(plan.Blobs),
		Freed: plan.Freed, Before: plan.Total, After: plan.Total - plan.Freed,
	}
	if dropKept {
		rep.Kept = len(failures)
	}
	if opt.DryRun {
		return rep, nil
	}
	if dropKept {
		if _, err := s.Kept.RemoveAll(); err != nil {
			return nil, fmt.Errorf("pruning kept failures: %w", err)
		}
	}
	// Records first, in one transaction: a crash after it leaves only
	// files nothing names, which build.Open (directories) and the next
	// prune (blobs) remove.
	if err := usage.Delete(s.DB, plan.Keys, plan.Layers, plan.Snapshots); err != nil {
		return nil, fmt.Errorf("pruning: %w", err)
	}
	var errs []error
	for _, id := range plan.Snapshots {
		if err := s.Snapshots.Remove(id); err != nil {
			errs = append(errs, err)
		}
		delete(g.Sizes, id)
	}
	for _, d := range plan.Blobs {
		if err := s.Content.Delete(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for id := range unmeasured {
		delete(g.Sizes, id)
	}
	if err := usage.Resync(s.DB, g.Sizes); err != nil {
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

// graph reads the metadata and what is on disk. Layer directories are
// measured once (a committed layer never changes); Prune stores the sizes.
// known holds sizes measured already. The ids it could not measure (0 in
// Sizes) are returned apart, so that their 0 is not stored.
func (s *Collector) graph(ctx context.Context, known map[string]int64) (*gcplan.Graph, map[string]bool, error) {
	snaps, err := s.DB.Snapshots()
	if err != nil {
		return nil, nil, err
	}
	unmeasured := map[string]bool{}
	g := &gcplan.Graph{Snapshots: map[string]cache.Snapshot{}, Sizes: map[string]int64{}, Blobs: map[digest.Digest]gcplan.Blob{}}
	named := map[digest.Digest]bool{}
	for _, rec := range snaps {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		g.Snapshots[rec.ID] = rec
		for _, b := range rec.Blobs {
			named[b.Digest] = true
		}
		if !s.Snapshots.Exists(rec.ID) {
			continue
		}
		if rec.Measured {
			g.Sizes[rec.ID] = rec.Size
			continue
		}
		if n, ok := known[rec.ID]; ok {
			g.Sizes[rec.ID] = n
			continue
		}
		n, err := s.Snapshots.Usage(rec.ID)
		if err != nil {
			// A layer that cannot be measured counts 0 and stays
			// unmeasured (measured again next time), rather than
			// failing du, prune and the automatic GC while it exists.
			s.warn(err.Error() + " (counted as 0 bytes)")
			n, unmeasured[rec.ID] = 0, true
		}
		g.Sizes[rec.ID] = n
	}
	if g.Keys, err = s.DB.Keys(); err != nil {
		return nil, nil, err
	}
	if g.Layers, err = s.DB.Layers(); err != nil {
		return nil, nil, err
	}
	imgs, err := s.DB.Images()
	if err != nil {
		return nil, nil, err
	}
	for _, img := range imgs {
		// An index keeps each platform's snapshot and every blob it reaches.
		for _, ref := range imagestore.ImageRefs(s.Content, img) {
			for _, b := range ref.Blobs {
				named[b] = true
			}
			g.Images = append(g.Images, ref)
		}
	}
	err = s.Content.Walk(func(d digest.Digest, size int64) error {
		b := gcplan.Blob{Size: size}
		if fi, err := os.Stat(s.Content.Path(d)); err == nil {
			b.ModTime = fi.ModTime()
		}
		if !named[d] {
			b.Meta = isJSONBlob(s.Content.Path(d), size)
		}
		g.Blobs[d] = b
		return ctx.Err()
	})
	return g, unmeasured, err
}

// isJSONBlob tells manifests and configs (small JSON objects) from layer
// data, which nothing names once its snapshot record is gone.
func isJSONBlob(path string, size int64) bool {
	if size > 4<<20 {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 64)
	n, _ := io.ReadFull(f, head)
	head = bytes.TrimLeft(head[:n], " \t\r\n")
	return len(head) > 0 && head[0] == '{'
}

// addKeptRoots makes the kept failures' snapshots roots of g, as images
// are: the automatic GC keeps them and du counts them as in use.
func addKeptRoots(g *gcplan.Graph, failures []kept.Failure) {
	for _, k := range failures {
		g.Images = append(g.Images, gcplan.ImageRef{Name: "kept failure " + k.ID, Snapshot: k.Snapshot})
	}
}
