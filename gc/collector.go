package gc

import (
	"path/filepath"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/kept"
	"github.com/builder-dev/builder/snapshot"
)

// Collector collects the garbage of one open state directory.
type Collector struct {
	// Root is the state directory; the default policy's limit comes from
	// the size of its filesystem.
	Root      string
	DB        *cache.DB
	Content   *content.Store
	Snapshots snapshot.Snapshotter
	// Kept are the failed steps' filesystems kept by --on-error=keep.
	Kept *kept.Store
	// leases are the uses of the cache by the builds running in this
	// process, which a GC spares.
	leases leaseTable
}

// cacheMountDir holds the RUN --mount=type=cache directories.
func (s *Collector) cacheMountDir() string { return filepath.Join(s.Root, "cachemounts") }
