package gc

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/builder-dev/builder/cache/gcplan"
	"github.com/builder-dev/builder/solver/ops/cachedir"
)

// addCacheMountUsage adds a record per cache mount to du: never in use by
// an image, always reclaimable by prune --all.
func (s *Collector) addCacheMountUsage(du *gcplan.DiskUsage) error {
	mounts, err := cachedir.List(s.cacheMountDir())
	if err != nil {
		return err
	}
	for _, m := range mounts {
		addReclaimable(du, gcplan.UsageRecord{ID: filepath.Base(m.Dir), Size: m.Size, LastUsed: m.LastUsed, Description: "cache mount id=" + m.ID})
	}
	return nil
}

// addReclaimable adds to du a record that no image uses.
func addReclaimable(du *gcplan.DiskUsage, r gcplan.UsageRecord) {
	du.Records = append(du.Records, r)
	du.Total += r.Size
	du.Reclaimable += r.Size
}

// pruneCacheMounts removes, for prune --all, the cache mounts no running
// step holds.
func (s *Collector) pruneCacheMounts(ctx context.Context, rep *PruneReport, dryRun bool) error {
	mounts, err := cachedir.List(s.cacheMountDir())
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		removed := true
		if !dryRun {
			if removed, err = cachedir.Remove(ctx, m); err != nil {
				errs = append(errs, err)
			}
		}
		rep.Before += m.Size
		if removed {
			rep.Freed += m.Size
		} else {
			rep.After += m.Size
		}
	}
	return errors.Join(errs...)
}
