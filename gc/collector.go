package gc

import (
	"fmt"
	"os"
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
	// Warn, if set, receives problems that do not stop a GC or du (a
	// layer that cannot be measured).
	Warn func(string)
	// leases are the uses of the cache by the builds running in this
	// process, which a GC spares.
	leases leaseTable
}

// cacheMountDir holds the RUN --mount=type=cache directories.
func (s *Collector) cacheMountDir() string { return filepath.Join(s.Root, "cachemounts") }

// warn reports a problem that does not stop the collector's work, to
// Warn or, without one, to the standard error.
func (s *Collector) warn(msg string) {
	if s.Warn != nil {
		s.Warn(msg)
		return
	}
	fmt.Fprintln(os.Stderr, "warning: "+msg)
}
