package ops

import (
	"context"
	"encoding/json"
	"io"
	"strings"

	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/solver/ops/layerid"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type imageOp struct {
	w  *Worker
	op llb.ImageOp
}

// CacheKey is the pinned manifest digest: the tag the user wrote is only a
// way to find it.
func (o *imageOp) CacheKey(ctx context.Context, _ []digest.Digest) (digest.Digest, error) {
	return llb.DigestStrings("image", o.op.Digest.String(), o.op.Platform), nil
}

func (o *imageOp) Run(ctx context.Context, _ []solver.Result, log io.Writer) (solver.Result, error) {
	n, err := o.w.Registries.ParseReference(o.op.Ref)
	if err != nil {
		return solver.Result{}, err
	}
	os, arch, variant := cutPlatform(o.op.Platform)
	res, err := o.w.Registries.Resolve(ctx, n.Context().Name()+"@"+o.op.Digest.String(), ocispec.Platform{OS: os, Architecture: arch, Variant: variant})
	if err != nil {
		return solver.Result{}, err
	}
	top, err := o.w.Puller.PullLog(ctx, res, log)
	if err != nil || top == "" {
		return solver.Result{Snapshot: top}, err
	}
	chain, err := o.w.DB.Chain(top)
	if err != nil {
		return solver.Result{}, err
	}
	return solver.Result{Snapshot: top, Content: layerid.Chain(chain)}, nil
}

func cutPlatform(p string) (os, arch, variant string) {
	parts := append(strings.Split(p, "/"), "", "")
	return parts[0], parts[1], parts[2]
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
