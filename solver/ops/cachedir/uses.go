package cachedir

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/builder-dev/builder/llb"
	"github.com/opencontainers/go-digest"
)

// Use is a cache mount a build uses: Key names its directory under the
// root, ID and Sharing are as written in RUN --mount.
type Use struct {
	Key, ID, Sharing string
}

// Key is the key of the cache id without a from= source: the id alone,
// so the same RUN finds the same cache on every machine.
func Key(id string) digest.Digest { return llb.DigestStrings("cache", id) }

// Uses collects the cache mounts a build's steps mounted. It is safe for
// concurrent use; the zero value is empty.
type Uses struct {
	mu sync.Mutex
	m  map[string]Use
}

// Add records u.
func (s *Uses) Add(u Use) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Use{}
	}
	s.m[u.Key] = u
}

// List returns the uses recorded, by key.
func (s *Uses) List() []Use {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Use, 0, len(s.m))
	for _, u := range s.m {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b Use) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// GraphUses returns the cache mounts of the steps under roots whose key
// is known without running anything: those without a from= source. A
// cached step mounts nothing, yet its cache is still the build's.
func GraphUses(roots []*llb.Vertex) []Use {
	var s Uses
	llb.Walk(roots, func(v *llb.Vertex) error {
		op, ok := v.Op().(llb.ExecOp)
		if !ok {
			return nil
		}
		for _, m := range op.Mounts {
			if m.Type != llb.MountCache || m.Input > 0 {
				continue
			}
			id := m.ID
			if id == "" {
				id = m.Target
			}
			s.Add(Use{Key: Key(id).Encoded(), ID: id, Sharing: m.Sharing})
		}
		return nil
	})
	return s.List()
}

// Reader locks the cache key under root against locked (exclusive) users
// while its files are read, as a shared user does, and returns its
// directory and the unlock function. A cache never made here is an error
// wrapping fs.ErrNotExist.
func Reader(ctx context.Context, root string, u Use) (string, func(), error) {
	if _, err := os.Stat(filepath.Join(root, u.Key, "0")); err != nil {
		return "", nil, err
	}
	return Acquire(ctx, root, u.Key, u.ID, llb.SharingShared)
}
