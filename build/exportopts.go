package build

import (
	"slices"
	"time"

	"github.com/builder-dev/builder/build/export"
	"github.com/builder-dev/builder/build/multiarch"
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/llb"
)

// Provenance asks for SLSA provenance on a multi-platform build's index.
type Provenance = multiarch.Provenance

func (s *State) exportStores() export.Stores {
	return export.Stores{DB: s.DB, Content: s.Content, Snapshots: s.Snapshots, Registries: s.Registries}
}

// exportOptions are what a build's outputs need of its options.
func exportOptions(opt Options, epoch *time.Time, use *gc.Use) export.Options {
	return export.Options{Outputs: opt.Outputs, Tags: opt.Tags, Push: opt.Push, Keychain: opt.Keychain, SquashAbove: opt.SquashAbove,
		Annotations: opt.Annotations.Manifest, DescriptorAnnotations: opt.Annotations.ManifestDescriptor,
		Epoch: epoch, Use: use, Progress: opt.Progress, Provenance: opt.Provenance, SBOMScanner: opt.SBOMScanner}
}

// provenanceRequest is what the provenance of a build records of its
// options.
func provenanceRequest(opt Options, started time.Time) multiarch.Request {
	return multiarch.Request{BuildArgs: opt.BuildArgs, Labels: opt.Labels, Target: opt.Target,
		SecretIDs: llb.SortedKeys(opt.Secrets), SSHIDs: slices.Sorted(slices.Values(append(llb.SortedKeys(opt.SSH), llb.SortedKeys(opt.SSHDial)...))),
		DockerfileName: opt.DockerfileName, Dockerfile: opt.Dockerfile, Started: started}
}

// result is the build's result from its export's and the steps that ran.
func result(out *export.Result, steps *stepUsages) *Result {
	return &Result{Manifest: out.Manifest, Config: out.Config, Names: out.Names, Steps: steps.list()}
}
