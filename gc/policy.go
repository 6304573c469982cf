package gc

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/builder-dev/builder/cache"
	"golang.org/x/sys/unix"
)

// Policy is the automatic GC run at the end of every build.
type Policy struct {
	// KeepStorage is the most bytes the state directory's cache may hold
	// before the least recently used records go; 0 disables the GC.
	KeepStorage int64
	// FileDigests is the most context file digests kept (0:
	// cache.DefaultMaxFileDigests); the GC prunes them once a quarter of
	// that was added since it last did.
	FileDigests int
}

// KeepStorageEnv overrides the default GC policy's limit: a size such as
// "5GB" or "0" to disable the automatic GC.
const KeepStorageEnv = "BUILDER_GC_KEEP_STORAGE"

// DefaultPolicy returns the automatic GC policy for a state directory:
// the limit in $BUILDER_GC_KEEP_STORAGE, else 10% of the size of the
// filesystem holding root, at most 10GB (BuildKit's default reserved space).
func DefaultPolicy(root string) (Policy, error) {
	if v := os.Getenv(KeepStorageEnv); v != "" {
		n, err := ParseSize(v)
		if err != nil {
			return Policy{}, fmt.Errorf("$%s: %w", KeepStorageEnv, err)
		}
		return Policy{KeepStorage: n}, nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return Policy{}, &os.PathError{Op: "statfs", Path: root, Err: err}
	}
	return Policy{KeepStorage: min(int64(st.Blocks)*int64(st.Bsize)/10, 10e9)}, nil
}

// autoGC prunes least recently used cache when the running total, with
// builder serve's project directories, exceeds the policy's limit (nil:
// DefaultPolicy), and prunes the context file digest records when enough
// were added. The check costs one read transaction and a directory
// listing (and a statfs for the default policy). It reports whether it
// ran.
func (s *Collector) autoGC(ctx context.Context, policy *Policy) (bool, error) {
	var p Policy
	if policy != nil {
		p = *policy
	} else {
		var err error
		if p, err = DefaultPolicy(s.Root); err != nil {
			return false, err
		}
	}
	if p.KeepStorage <= 0 {
		return false, nil
	}
	total, added, err := s.DB.GCCounts()
	if err != nil {
		return false, err
	}
	sums, err := s.autoPruneFileSums(p.FileDigests, added)
	if err != nil {
		return sums, err
	}
	projects := &PruneReport{}
	left, err := s.pruneProjects(PruneOptions{KeepStorage: p.KeepStorage}, total, projects)
	if err != nil || total+left <= p.KeepStorage {
		return sums || projects.Projects > 0, err
	}
	_, err = s.prune(ctx, PruneOptions{KeepStorage: max(p.KeepStorage-left, 1)}, s.leases.all(), false)
	return true, err
}

// autoPruneFileSums prunes the context file digest records when a quarter
// of maxDigests (0: the default) was added since the last prune, so that
// they stay under about 1.25 times the bound (or the size of the roots
// used last, which stay). It reports whether it ran.
func (s *Collector) autoPruneFileSums(maxDigests, added int) (bool, error) {
	if maxDigests <= 0 {
		maxDigests = cache.DefaultMaxFileDigests
	}
	if added < max(maxDigests/4, 1) {
		return false, nil
	}
	// Directories only: looking at every file would stall the end of a
	// build for seconds at a million records; `builder prune` does.
	_, err := s.DB.FileSums().Prune(cache.FileSumsPolicy{MaxDigests: maxDigests, DirsOnly: true})
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
