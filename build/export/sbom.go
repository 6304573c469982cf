package export

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/platform"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/solver/ops"
	"golang.org/x/sync/errgroup"
)

// sbomScans are the SBOM scans of a build's platforms (--sbom), running
// while the images are assembled: the scanner is another process, so on
// a changed build it overlaps the compression of the new layers.
type sbomScans struct {
	cancel     context.CancelFunc
	done       chan struct{}
	statements []attest.Statement
	err        error
}

// startSBOMs starts scanning each image's file tree with opt.SBOMScanner;
// nil without --sbom. The caller must call stop.
func startSBOMs(ctx context.Context, s Stores, opt Options, images []Image, progress *step) (*sbomScans, error) {
	if opt.SBOMScanner == "" {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	sc := &sbomScans{cancel: cancel, done: make(chan struct{})}
	sc.statements = make([]attest.Statement, len(images))
	go func() {
		defer close(sc.done)
		// The platforms' scans run in parallel, as their assemblies do, one
		// per CPU at most: each scanner reads a whole tree and computes.
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(scanLimit(len(images)))
		for i, img := range images {
			g.Go(func() (err error) {
				sc.statements[i], err = scanImage(gctx, s, opt, img, progress)
				return err
			})
		}
		sc.err = g.Wait()
	}()
	return sc, nil
}

// scanLimit is how many of n scans run at once.
func scanLimit(n int) int { return max(1, min(n, runtime.NumCPU())) }

// wait returns one SBOM statement per image, in order.
func (sc *sbomScans) wait() ([]attest.Statement, error) {
	if sc == nil {
		return nil, nil
	}
	<-sc.done
	return sc.statements, sc.err
}

// stop ends the scans early (the export failed) and waits for them, so
// that no scanner outlives the build.
func (sc *sbomScans) stop() {
	if sc != nil {
		sc.cancel()
		<-sc.done
	}
}

// scanImage mounts img's file tree read-only and runs the scanner on it.
func scanImage(ctx context.Context, s Stores, opt Options, img Image, progress *step) (attest.Statement, error) {
	start := time.Now()
	lowers, err := (&ops.Worker{DB: s.DB}).Lowers(img.Top)
	if err != nil {
		return attest.Statement{}, fmt.Errorf("SBOM of %s: %w", platform.Format(img.Platform), err)
	}
	name := platform.Format(img.Platform)
	if len(opt.Tags) > 0 {
		name = opt.Tags[0] + " " + name
	}
	var st attest.Statement
	// The scanner, a child process, sees the mount: it is made in the
	// mount namespace of the thread that runs the callback.
	err = s.Snapshots.WithMounts(ctx, [][]snapshot.Mount{s.Snapshots.View(lowers)}, func(roots []string) error {
		var err error
		st, err = attest.SBOM(ctx, opt.SBOMScanner, roots[0], name)
		return err
	})
	if err != nil {
		return attest.Statement{}, fmt.Errorf("%s: %w", platform.Format(img.Platform), err)
	}
	fmt.Fprintf(progress, "SBOM of %s: %.1fs\n", platform.Format(img.Platform), time.Since(start).Seconds())
	return st, nil
}
