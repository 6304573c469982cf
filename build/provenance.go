package build

import (
	"fmt"
	"time"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/build/multiarch"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/platform"
)

// Provenance asks for SLSA provenance on a multi-platform build's index.
type Provenance = multiarch.Provenance

// provenances are the statements of each platform's build, made once so
// that every output's index gets the same ones; nil without --provenance.
func provenances(opt Options, images []platformImage, started time.Time) ([]attest.Statement, error) {
	if opt.Provenance.Mode == "" {
		return nil, nil
	}
	req := multiarch.Request{BuildArgs: opt.BuildArgs, Labels: opt.Labels, Target: opt.Target,
		SecretIDs: llb.SortedKeys(opt.Secrets), SSHIDs: llb.SortedKeys(opt.SSH),
		DockerfileName: opt.DockerfileName, Dockerfile: opt.Dockerfile, Started: started}
	var out []attest.Statement
	for _, pi := range images {
		st, err := opt.Provenance.Statement(req, pi.platform, pi.fe.Root)
		if err != nil {
			return nil, fmt.Errorf("provenance of %s: %w", platform.Format(pi.platform), err)
		}
		out = append(out, st)
	}
	return out, nil
}
