package gc

import (
	"errors"
	"path/filepath"
	"sort"
	"time"

	"github.com/builder-dev/builder/cache/coord"
	"github.com/builder-dev/builder/cache/gcplan"
)

// The context directories that builder serve keeps per project
// (serve/projects) are a cache of its blob store, made again by copying:
// they go first, least recently used first, and never one that a build
// uses (coord.TryUseDir).

func (s *Collector) projectsDir() string { return filepath.Join(s.Root, "serve", "projects") }

// pruneProjects removes the project directories no build uses: with a
// limit, least recently used first until they and the rest of the state
// (others bytes) fit in it; else all, or those unused for opt.Until. It
// returns the bytes of those left.
func (s *Collector) pruneProjects(opt PruneOptions, others int64, rep *PruneReport) (int64, error) {
	dirs, err := coord.UsedDirs(s.projectsDir())
	if err != nil {
		return 0, err
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].LastUsed.Before(dirs[j].LastUsed) })
	var total int64
	for _, d := range dirs {
		total += d.Size
	}
	rep.Before += total
	cutoff := time.Now().Add(-opt.Until)
	var errs []error
	for _, d := range dirs {
		if opt.Until > 0 && d.LastUsed.After(cutoff) {
			continue
		}
		if opt.KeepStorage > 0 && others+total <= opt.KeepStorage {
			break
		}
		removed := true
		if !opt.DryRun {
			if removed, err = coord.RemoveUnusedDir(d.Dir); err != nil {
				errs = append(errs, err)
			}
		}
		if removed {
			total -= d.Size
			rep.Freed += d.Size
			rep.Projects++
		}
	}
	rep.After += total
	return total, errors.Join(errs...)
}

// addProjectUsage adds a record per project directory to du.
func (s *Collector) addProjectUsage(du *gcplan.DiskUsage) error {
	dirs, err := coord.UsedDirs(s.projectsDir())
	for _, d := range dirs {
		addReclaimable(du, gcplan.UsageRecord{ID: filepath.Base(d.Dir), Size: d.Size, LastUsed: d.LastUsed, Description: "builder serve project context"})
	}
	return err
}
