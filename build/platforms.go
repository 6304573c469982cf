package build

import (
	"fmt"
	"maps"

	"github.com/builder-dev/builder/frontend/dockerfile"

	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/platform"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// targetPlatform is the platform the image is built for.
func (opt Options) targetPlatform() ocispec.Platform {
	if len(opt.Platforms) == 0 {
		return platform.Host()
	}
	return opt.Platforms[0]
}

// checkRunnable fails before the first step when a RUN step's platform
// cannot run on this host (no emulator registered), naming the step, the
// Debian package and the command that registers it.
func checkRunnable(root *llb.Vertex) error {
	checked := map[string]error{}
	var first error
	llb.Walk([]*llb.Vertex{root}, func(v *llb.Vertex) error {
		op, ok := v.Op().(llb.ExecOp)
		if !ok || op.Platform == "" || first != nil {
			return nil
		}
		err, seen := checked[op.Platform]
		if !seen {
			p, perr := platform.Parse(op.Platform)
			if perr == nil {
				err = platform.CheckRunnable(p)
			} else {
				err = perr
			}
			checked[op.Platform] = err
		}
		if err != nil {
			first = fmt.Errorf("%s: %w", v.Meta().Name, err)
		}
		return nil
	})
	return first
}

// addLabels adds the build's --label values to the image config.
func addLabels(fe *dockerfile.Result, labels map[string]string) {
	if len(labels) == 0 {
		return
	}
	if fe.Image.Config.Labels == nil {
		fe.Image.Config.Labels = map[string]string{}
	}
	maps.Copy(fe.Image.Config.Labels, labels)
}
