// Package multiarch holds the parts of a multi-platform build that need
// nothing of the build's state: solving the platforms' graphs together,
// writing their file trees side by side, and their provenance statements.
package multiarch

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"time"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/cache/remote"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/frontend/dockerfile/checks"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/platform"
	"github.com/builder-dev/builder/solver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Solve solves every root in one solve: the solver runs a vertex once
// however many roots share it (a stage FROM --platform=$BUILDPLATFORM).
// solved, if not nil, is called with each root's result as soon as that
// root is solved, while the others may still be (a platform's export need
// not wait for the slowest platform); its error ends the solve.
func Solve(ctx context.Context, sv *solver.Solver, roots []*llb.Vertex, solved func(i int, r solver.Result) error) ([]solver.Result, error) {
	out := make([]solver.Result, len(roots))
	g, gctx := errgroup.WithContext(ctx)
	for i, r := range roots {
		g.Go(func() (err error) {
			if out[i], err = sv.Solve(gctx, r); err != nil || solved == nil {
				return err
			}
			return solved(i, out[i])
		})
	}
	return out, g.Wait()
}

// Provenance asks for a SLSA provenance attestation per platform image of
// an index (--provenance=mode=...); a zero Mode asks for none.
type Provenance struct {
	Mode    attest.Mode
	Version attest.Version
}

// Request is what a provenance statement says of the build's request.
type Request struct {
	BuildArgs, Labels map[string]string
	Target            string
	SecretIDs, SSHIDs []string
	DockerfileName    string
	Dockerfile        []byte
	Started           time.Time
}

// Statement is the provenance statement of one platform's build of graph
// root.
func (p Provenance) Statement(req Request, target ocispec.Platform, root *llb.Vertex) (attest.Statement, error) {
	host, _ := os.Hostname()
	b := attest.Build{
		BuilderID: "builder://" + host, Frontend: "dockerfile.v0",
		Args:     map[string]string{},
		Locals:   []string{"context", "dockerfile"},
		Platform: target, Builder: platform.Host(),
		Started: req.Started, Finished: time.Now().UTC(),
		DockerfileName: req.DockerfileName, Dockerfile: req.Dockerfile,
	}
	for k, v := range attest.FilterArgs(req.BuildArgs) {
		b.Args["build-arg:"+k] = v
	}
	for k, v := range req.Labels {
		b.Args["label:"+k] = v
	}
	if req.Target != "" {
		b.Args["target"] = req.Target
	}
	for _, id := range req.SecretIDs {
		b.Secrets = append(b.Secrets, attest.Ref{ID: id})
	}
	for _, id := range req.SSHIDs {
		b.SSH = append(b.SSH, attest.Ref{ID: id})
	}
	if err := llb.Walk([]*llb.Vertex{root}, func(v *llb.Vertex) error {
		step, material, err := stepOf(v)
		if material != nil {
			b.Materials = append(b.Materials, *material)
		}
		b.Steps = append(b.Steps, step)
		return err
	}); err != nil {
		return attest.Statement{}, err
	}
	version := p.Version
	if version == "" {
		version = attest.SLSA1 // BuildKit v0.34's default
	}
	return attest.Provenance(b, version, p.Mode)
}

// stepOf is a vertex as a provenance step, and the material it reads if
// it is a base image.
func stepOf(v *llb.Vertex) (attest.Step, *attest.Material, error) {
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
	var material *attest.Material
	switch op := v.Op().(type) {
	case llb.ImageOp:
		opPlatform = op.Platform
		material = &attest.Material{Ref: op.Ref, Digest: op.Digest}
	case llb.ExecOp:
		opPlatform = op.Platform
	}
	if opPlatform != "" {
		p, err := platform.Parse(opPlatform)
		if err != nil {
			return step, material, err
		}
		step.Platform = &p
		if material != nil {
			material.Platform = &p
		}
	}
	return step, material, nil
}

// WriteIndex writes an image index of manifests (each with its platform)
// to store, with an attestation manifest per image for statements (each
// manifest's, in order; none when empty), as BuildKit lays them out.
func WriteIndex(ctx context.Context, store *content.Store, mediaType string, manifests []ocispec.Descriptor, statements [][]attest.Statement) (ocispec.Descriptor, error) {
	idx := ocispec.Index{MediaType: mediaType, Manifests: manifests}
	idx.SchemaVersion = 2
	var subjects []attest.Image
	for i, sts := range statements {
		subjects = append(subjects, attest.Image{Descriptor: manifests[i], Statements: sts})
	}
	adds, err := attest.IndexAdditions(subjects)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, m := range adds {
		for _, b := range m.Blobs {
			if _, err := store.WriteBytes(ctx, b); err != nil {
				return ocispec.Descriptor{}, err
			}
		}
		if _, err := store.WriteBytes(ctx, m.Raw); err != nil {
			return ocispec.Descriptor{}, err
		}
		idx.Manifests = append(idx.Manifests, m.Descriptor)
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d, err := store.WriteBytes(ctx, raw)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(raw))}, nil
}

// CheckRunnable fails when a RUN step of root has a platform this host
// cannot run (no emulator registered), naming the step; it is called
// before the first step.
func CheckRunnable(root *llb.Vertex) error {
	checked := map[string]error{}
	var first error
	llb.Walk([]*llb.Vertex{root}, func(v *llb.Vertex) error {
		op, ok := v.Op().(llb.ExecOp)
		if !ok || op.Platform == "" || first != nil {
			return nil
		}
		err, seen := checked[op.Platform]
		if !seen {
			var p ocispec.Platform
			if p, err = platform.Parse(op.Platform); err == nil {
				err = platform.CheckRunnable(p)
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

// Solves are the finished solves of a build's platforms, as one for the
// cache export (--cache-to): every platform's records, and every
// platform's RUN cache mounts once.
type Solves []remote.Solve

var _ remote.CacheMountSolve = Solves{}

func (a Solves) Records(ctx context.Context, max bool) (map[digest.Digest]string, error) {
	recs := map[digest.Digest]string{}
	for _, s := range a {
		r, err := s.Records(ctx, max)
		if err != nil {
			return nil, err
		}
		maps.Copy(recs, r)
	}
	return recs, nil
}

func (a Solves) CacheMounts(ctx context.Context) ([]remote.CacheMount, error) {
	var out []remote.CacheMount
	seen := map[string]bool{}
	for _, s := range a {
		cs, ok := s.(remote.CacheMountSolve)
		if !ok {
			continue
		}
		ms, err := cs.CacheMounts(ctx)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if !seen[m.Key] {
				seen[m.Key] = true
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// Check runs the build checks of fopt's Dockerfile for each platform (the
// stages a platform needs and its base images may differ: FROM
// base-$TARGETARCH), with each finding once; Err is the first platform's
// that has one.
func Check(ctx context.Context, fopt dockerfile.Options, r dockerfile.ImageResolver, platforms []ocispec.Platform) (*checks.Result, error) {
	out := &checks.Result{}
	seen := map[checks.Warning]bool{}
	for _, p := range platforms {
		fopt.TargetPlatform = p
		res, err := checks.Check(ctx, fopt, r, checks.Options{})
		if err != nil {
			return nil, err
		}
		for _, w := range res.Warnings {
			if !seen[w] {
				seen[w] = true
				out.Warnings = append(out.Warnings, w)
			}
		}
		if out.Err == nil {
			out.Err = res.Err
		}
	}
	return out, nil
}
