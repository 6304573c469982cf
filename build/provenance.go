package build

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/platform"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Provenance asks for a SLSA provenance attestation per platform image of
// an index (--provenance=mode=...); a zero Mode asks for none.
type Provenance struct {
	Mode    attest.Mode
	Version attest.Version
}

// provenance is the statement of one platform's build.
func provenance(opt Options, pi platformImage, started time.Time) (attest.Statement, error) {
	host, _ := os.Hostname()
	b := attest.Build{
		BuilderID: "builder://" + host, Frontend: "dockerfile.v0",
		Args:     map[string]string{},
		Locals:   []string{"context", "dockerfile"},
		Platform: pi.platform, Builder: platform.Host(),
		Started: started, Finished: time.Now().UTC(),
		DockerfileName: opt.DockerfileName, Dockerfile: opt.Dockerfile,
	}
	for k, v := range attest.FilterArgs(opt.BuildArgs) {
		b.Args["build-arg:"+k] = v
	}
	for k, v := range opt.Labels {
		b.Args["label:"+k] = v
	}
	if opt.Target != "" {
		b.Args["target"] = opt.Target
	}
	for _, id := range llb.SortedKeys(opt.Secrets) {
		b.Secrets = append(b.Secrets, attest.Ref{ID: id})
	}
	for _, id := range llb.SortedKeys(opt.SSH) {
		b.SSH = append(b.SSH, attest.Ref{ID: id})
	}
	llb.Walk([]*llb.Vertex{pi.fe.Root}, func(v *llb.Vertex) error {
		step := attest.Step{Digest: v.Digest(), Op: v.Op()}
		for _, in := range v.Inputs() {
			if in != nil {
				step.Inputs = append(step.Inputs, attest.StepInput{Digest: in.Digest()})
			}
		}
		if l := v.Meta().Location; l.StartLine > 0 {
			step.Lines = [][2]int{{l.StartLine, max(l.EndLine, l.StartLine)}}
		}
		var opPlatform string
		switch op := v.Op().(type) {
		case llb.ImageOp:
			opPlatform = op.Platform
			p, err := platform.Parse(op.Platform)
			if err != nil {
				return err
			}
			b.Materials = append(b.Materials, attest.Material{Ref: op.Ref, Digest: op.Digest, Platform: &p})
		case llb.ExecOp:
			opPlatform = op.Platform
		}
		if opPlatform != "" {
			if p, err := platform.Parse(opPlatform); err == nil {
				step.Platform = &p
			}
		}
		b.Steps = append(b.Steps, step)
		return nil
	})
	version := opt.Provenance.Version
	if version == "" {
		version = attest.SLSA1 // BuildKit v0.34's default
	}
	return attest.Provenance(b, version, opt.Provenance.Mode)
}

// provenances are the statements of each platform's build, made once so
// that every output's index gets the same ones; nil without --provenance.
func provenances(opt Options, images []platformImage, started time.Time) ([]attest.Statement, error) {
	if opt.Provenance.Mode == "" {
		return nil, nil
	}
	var out []attest.Statement
	for _, pi := range images {
		st, err := provenance(opt, pi, started)
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
