package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/kept"
	"github.com/builder-dev/builder/solver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
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
	// Freed is the bytes of the removed layer directories and blobs.
	Freed int64
	// Before and After are the total sizes around the prune.
	Before, After int64
}

// GCPolicy is the automatic GC run at the end of every build.
type GCPolicy struct {
	// KeepStorage is the most bytes the state directory's cache may hold
	// before the least recently used records go; 0 disables the GC.
	KeepStorage int64
}

// GCKeepStorageEnv overrides the default GC policy's limit: a size such as
// "5GB" or "0" to disable the automatic GC.
const GCKeepStorageEnv = "BUILDER_GC_KEEP_STORAGE"

// DefaultGCPolicy returns the automatic GC policy for a state directory:
// the limit in $BUILDER_GC_KEEP_STORAGE, else 10% of the size of the
// filesystem holding root, at most 10GB (BuildKit's default reserved space).
func DefaultGCPolicy(root string) (GCPolicy, error) {
	if v := os.Getenv(GCKeepStorageEnv); v != "" {
		n, err := ParseSize(v)
		if err != nil {
			return GCPolicy{}, fmt.Errorf("$%s: %w", GCKeepStorageEnv, err)
		}
		return GCPolicy{KeepStorage: n}, nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return GCPolicy{}, &os.PathError{Op: "statfs", Path: root, Err: err}
	}
	return GCPolicy{KeepStorage: min(int64(st.Blocks)*int64(st.Bsize)/10, 10e9)}, nil
}

// DiskUsage reports what the build cache and the local image store occupy.
func (s *State) DiskUsage(ctx context.Context) (*cache.DiskUsage, error) {
	g, err := s.graph(ctx, nil)
	if err != nil {
		return nil, err
	}
	failures, err := s.Kept.List()
	addKeptRoots(g, failures)
	if err != nil {
		return nil, err
	}
	du := cache.Usage(g)
	if err := s.addCacheMountUsage(du); err != nil {
		return nil, err
	}
	return du, nil
}

// Prune removes build cache that no image of the local store and no build
// running in this process needs, as opt selects.
func (s *State) Prune(ctx context.Context, opt PruneOptions) (*PruneReport, error) {
	rep, err := s.prune(ctx, opt, s.leases.all(), true)
	if err == nil && opt.All {
		err = s.pruneCacheMounts(ctx, rep, opt.DryRun)
	}
	return rep, err
}

// prune removes what opt selects; with dropKept the kept failures
// (--on-error=keep) go too, as `builder prune` does, where the automatic GC
// keeps them.
func (s *State) prune(ctx context.Context, opt PruneOptions, ls []cache.Lease, dropKept bool) (*PruneReport, error) {
	// Layer directories are measured first, without holding the
	// database: walking them is slow.
	measured, err := s.graph(ctx, nil)
	if err != nil {
		return nil, err
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
func (s *State) pruneHeld(ctx context.Context, opt PruneOptions, ls []cache.Lease, dropKept bool, sizes map[string]int64) (*PruneReport, error) {
	g, err := s.graph(ctx, sizes)
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
	plan := cache.Collect(g, cache.Policy{All: opt.All, Until: opt.Until, KeepStorage: opt.KeepStorage}, ls, time.Now())
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
	if err := s.DB.Delete(plan.Keys, plan.Layers, plan.Snapshots); err != nil {
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
	if err := s.DB.Resync(g.Sizes); err != nil {
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

// graph reads the metadata and what is on disk. Layer directories are
// measured once (a committed layer never changes); Prune stores the sizes.
// known holds sizes measured already.
func (s *State) graph(ctx context.Context, known map[string]int64) (*cache.Graph, error) {
	snaps, err := s.DB.Snapshots()
	if err != nil {
		return nil, err
	}
	g := &cache.Graph{Snapshots: map[string]cache.Snapshot{}, Sizes: map[string]int64{}, Blobs: map[digest.Digest]cache.Blob{}}
	named := map[digest.Digest]bool{}
	for _, rec := range snaps {
		if err := ctx.Err(); err != nil {
			return nil, err
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
			return nil, err
		}
		g.Sizes[rec.ID] = n
	}
	if g.Keys, err = s.DB.Keys(); err != nil {
		return nil, err
	}
	if g.Layers, err = s.DB.Layers(); err != nil {
		return nil, err
	}
	imgs, err := s.DB.Images()
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		ref := cache.ImageRef{Name: img.Name, Snapshot: img.Snapshot, Blobs: []digest.Digest{img.Manifest.Digest}}
		// An unreadable manifest protects only itself; its config and
		// layers cannot be known.
		if raw, err := s.Content.ReadAll(img.Manifest.Digest); err == nil {
			var m ocispec.Manifest
			if json.Unmarshal(raw, &m) == nil {
				ref.Blobs = append(ref.Blobs, m.Config.Digest)
				for _, l := range m.Layers {
					ref.Blobs = append(ref.Blobs, l.Digest)
				}
			}
		}
		for _, b := range ref.Blobs {
			named[b] = true
		}
		g.Images = append(g.Images, ref)
	}
	err = s.Content.Walk(func(d digest.Digest, size int64) error {
		b := cache.Blob{Size: size}
		if fi, err := os.Stat(s.Content.Path(d)); err == nil {
			b.ModTime = fi.ModTime()
		}
		if !named[d] {
			b.Meta = isJSONBlob(s.Content.Path(d), size)
		}
		g.Blobs[d] = b
		return ctx.Err()
	})
	return g, err
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

// buildUse records what one build uses of the cache, as solver.Cache sees
// it: every hit and every recorded result. At the end of the build it is
// written as last-use times (one transaction) and serves as the lease that
// keeps the automatic GC off it.
type buildUse struct {
	solver.Cache
	db    *cache.DB
	mu    sync.Mutex
	keys  []digest.Digest
	snaps []string
	blobs []digest.Digest
}

func (u *buildUse) Lookup(ctx context.Context, key digest.Digest) (solver.Result, bool, error) {
	r, ok, err := u.Cache.Lookup(ctx, key)
	if ok {
		u.note(key, r.Snapshot)
	}
	return r, ok, err
}

func (u *buildUse) Record(ctx context.Context, key digest.Digest, r solver.Result) error {
	// Noted before recording, so that the lease covers the result as soon
	// as it exists.
	u.note(key, r.Snapshot)
	return u.Cache.Record(ctx, key, r)
}

// LockKey implements solver.KeyLocker: a step that a build in another
// process is running is waited for.
func (u *buildUse) LockKey(ctx context.Context, key digest.Digest, waiting func(string)) (func(), error) {
	l, err := u.db.LockKey(ctx, key, waiting)
	if err != nil {
		return nil, err
	}
	return func() { l.Unlock() }, nil
}

func (u *buildUse) note(key digest.Digest, snap string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.keys = append(u.keys, key)
	if snap != "" {
		u.snaps = append(u.snaps, snap)
	}
}

// exported notes the built image's manifest, config and layers.
func (u *buildUse) exported(manifest ocispec.Descriptor, raw []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.blobs = append(u.blobs, manifest.Digest)
	var m ocispec.Manifest
	if json.Unmarshal(raw, &m) == nil {
		u.blobs = append(u.blobs, m.Config.Digest)
		for _, l := range m.Layers {
			u.blobs = append(u.blobs, l.Digest)
		}
	}
}

func (u *buildUse) lease() cache.Lease {
	u.mu.Lock()
	defer u.mu.Unlock()
	return cache.Lease{
		Snapshots: append([]string(nil), u.snaps...),
		Keys:      append([]digest.Digest(nil), u.keys...),
		Blobs:     append([]digest.Digest(nil), u.blobs...),
	}
}

// leaseTable holds the uses of the builds of one State running in this
// process: a Prune, or one build's automatic GC, must spare the others'.
// (Other processes cannot prune meanwhile: a build holds the state
// directory's lock.)
type leaseTable struct {
	mu   sync.Mutex
	uses map[*buildUse]bool
}

func (t *leaseTable) add(u *buildUse) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.uses == nil {
		t.uses = map[*buildUse]bool{}
	}
	t.uses[u] = true
}

func (t *leaseTable) remove(u *buildUse) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.uses, u)
}

// all returns the leases of the builds running.
func (t *leaseTable) all() []cache.Lease {
	t.mu.Lock()
	us := make([]*buildUse, 0, len(t.uses))
	for u := range t.uses {
		us = append(us, u)
	}
	t.mu.Unlock()
	out := make([]cache.Lease, 0, len(us))
	for _, u := range us {
		out = append(out, u.lease())
	}
	return out
}

// startUse begins recording a build's use of the cache; finishUse must
// follow.
func (s *State) startUse() *buildUse {
	u := &buildUse{Cache: s.worker, db: s.DB}
	s.leases.add(u)
	return u
}

// finishUse ends a build, successful or not: it writes the last-use times
// of what the build used and, if the cache is over the policy's limit, runs
// the GC with the build's use (and that of other builds still running) as
// leases. Problems are reported to warn; the build's result stands.
func (s *State) finishUse(ctx context.Context, u *buildUse, policy *GCPolicy, warn func(string)) {
	defer s.leases.remove(u)
	if warn == nil {
		warn = func(string) {}
	}
	l := u.lease()
	err := s.DB.Touch(cache.Use{Snapshots: l.Snapshots, Keys: l.Keys, Time: time.Now().UTC()}, s.Snapshots.Usage)
	if err != nil {
		warn("recording cache use: " + err.Error())
	}
	if ctx.Err() != nil {
		return
	}
	if _, err := s.autoGC(ctx, policy); err != nil {
		warn("automatic build cache GC: " + err.Error())
	}
}

// autoGC prunes least recently used cache when the running total exceeds
// the policy's limit (nil: DefaultGCPolicy). The check costs one read
// transaction (and a statfs for the default policy). It reports whether it
// ran.
func (s *State) autoGC(ctx context.Context, policy *GCPolicy) (bool, error) {
	var p GCPolicy
	if policy != nil {
		p = *policy
	} else {
		var err error
		if p, err = DefaultGCPolicy(s.Root); err != nil {
			return false, err
		}
	}
	if p.KeepStorage <= 0 {
		return false, nil
	}
	total, err := s.DB.Usage()
	if err != nil || total <= p.KeepStorage {
		return false, err
	}
	_, err = s.prune(ctx, PruneOptions{KeepStorage: p.KeepStorage}, s.leases.all(), false)
	return true, err
}

// ParseSize reads a size such as 500MB, 2GiB, 1.5g or 1024 (bytes). KB,
// MB, GB and TB are powers of 1000, KiB, MiB, GiB and TiB powers of 1024;
// a bare K, M, G or T is decimal too.
func ParseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("invalid size %q: want a number and a unit such as 500MB or 2GiB", v)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
		"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40,
	}
	m, ok := mult[unit]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", v, s[i:])
	}
	return int64(f * m), nil
}

// addKeptRoots makes the kept failures' snapshots roots of g, as images
// are: the automatic GC keeps them and du counts them as in use.
func addKeptRoots(g *cache.Graph, failures []kept.Failure) {
	for _, k := range failures {
		g.Images = append(g.Images, cache.ImageRef{Name: "kept failure " + k.ID, Snapshot: k.Snapshot})
	}
}
