package build

import (
	"context"
	"fmt"
	"time"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/build/multiarch"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/platform"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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

// attachProvenance adds an attestation manifest per platform image to idx
// (BuildKit's layout), writing its blobs to the content store.
func (s *State) attachProvenance(ctx context.Context, idx *ocispec.Index, statements []attest.Statement) error {
	if len(statements) == 0 {
		return nil
	}
	var subjects []attest.Image
	for i, st := range statements {
		subjects = append(subjects, attest.Image{Descriptor: idx.Manifests[i], Statements: []attest.Statement{st}})
	}
	adds, err := attest.IndexAdditions(subjects)
	if err != nil {
		return err
	}
	for _, m := range adds {
		for _, b := range m.Blobs {
			if _, err := s.Content.WriteBytes(ctx, b); err != nil {
				return err
			}
		}
		if _, err := s.Content.WriteBytes(ctx, m.Raw); err != nil {
			return err
		}
		idx.Manifests = append(idx.Manifests, m.Descriptor)
	}
	return nil
}
