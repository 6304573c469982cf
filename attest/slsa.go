package attest

import (
	"fmt"
	"time"

	"github.com/builder-dev/builder/platform"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The predicate types below follow BuildKit's
// solver/llbsolver/provenance/types field for field (JSON names and
// nesting), so that tools reading BuildKit's provenance read ours.

type builderJSON struct {
	ID string `json:"id"`
}

type slsa02 struct {
	Builder     builderJSON  `json:"builder"`
	BuildType   string       `json:"buildType"`
	Materials   []material   `json:"materials"`
	Invocation  invocation02 `json:"invocation"`
	BuildConfig *buildConfig `json:"buildConfig,omitempty"`
	Metadata    metadata02   `json:"metadata"`
}

type invocation02 struct {
	ConfigSource struct{}       `json:"configSource"`
	Parameters   parametersJSON `json:"parameters"`
	Environment  environment02  `json:"environment"`
}

type environment02 struct {
	Platform string `json:"platform"`
}

type metadata02 struct {
	BuildInvocationID string           `json:"buildInvocationID,omitempty"`
	BuildStartedOn    *time.Time       `json:"buildStartedOn,omitempty"`
	BuildFinishedOn   *time.Time       `json:"buildFinishedOn,omitempty"`
	Completeness      completeness02   `json:"completeness"`
	Reproducible      bool             `json:"reproducible"`
	BuildKit          buildkitMetadata `json:"https://mobyproject.org/buildkit@v1#metadata"`
}

type completeness02 struct {
	Parameters  bool `json:"parameters"`
	Environment bool `json:"environment"`
	Materials   bool `json:"materials"`
}

type slsa1 struct {
	BuildDefinition buildDefinition1 `json:"buildDefinition"`
	RunDetails      runDetails1      `json:"runDetails"`
}

type buildDefinition1 struct {
	BuildType            string     `json:"buildType"`
	ResolvedDependencies []material `json:"resolvedDependencies"`
	ExternalParameters   struct {
		ConfigSource struct{}       `json:"configSource"`
		Request      parametersJSON `json:"request"`
	} `json:"externalParameters"`
	InternalParameters internal1 `json:"internalParameters"`
}

type internal1 struct {
	BuildConfig     *buildConfig `json:"buildConfig,omitempty"`
	BuilderPlatform string       `json:"builderPlatform"`
	TargetPlatform  string       `json:"targetPlatform,omitempty"`
}

type runDetails1 struct {
	Builder  builderJSON `json:"builder"`
	Metadata metadata1   `json:"metadata"`
}

type metadata1 struct {
	InvocationID string           `json:"invocationId,omitempty"`
	StartedOn    *time.Time       `json:"startedOn,omitempty"`
	FinishedOn   *time.Time       `json:"finishedOn,omitempty"`
	BuildKit     buildkitMetadata `json:"buildkit_metadata"`
	Completeness struct {
		Request              bool `json:"request"`
		ResolvedDependencies bool `json:"resolvedDependencies"`
	} `json:"buildkit_completeness"`
}

type buildConfig struct {
	Definition    []stepJSON               `json:"llbDefinition,omitempty"`
	DigestMapping map[digest.Digest]string `json:"digestMapping,omitempty"`
}

type stepJSON struct {
	ID     string   `json:"id"`
	Inputs []string `json:"inputs,omitempty"`
	Op     opJSON   `json:"op"`
}

// opJSON has the keys of BuildKit's pb.Op: the op itself and the platform
// it runs for.
type opJSON struct {
	Op       any               `json:"Op"`
	Platform *ocispec.Platform `json:"platform,omitempty"`
}

type buildkitMetadata struct {
	Source *sourceJSON                       `json:"source,omitempty"`
	Layers map[string][][]ocispec.Descriptor `json:"layers,omitempty"`
}

type sourceJSON struct {
	Locations map[string]locationsJSON `json:"locations,omitempty"`
	Infos     []sourceInfo             `json:"infos,omitempty"`
}

type locationsJSON struct {
	Locations []locationJSON `json:"locations"`
}

type locationJSON struct {
	Ranges []rangeJSON `json:"ranges"`
}

type rangeJSON struct {
	Start struct {
		Line int `json:"line"`
	} `json:"start"`
	End struct {
		Line int `json:"line"`
	} `json:"end"`
}

type sourceInfo struct {
	Filename string `json:"filename"`
	Language string `json:"language"`
	Data     []byte `json:"data"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// materialsComplete is BuildKit's rule: a build that read local files
// (the context) cannot list them as materials.
func materialsComplete(b Build) bool { return len(b.Locals) == 0 }

func slsa02Predicate(b Build, p parametersJSON, complete bool, ms []material, cfg *buildConfig, meta buildkitMetadata) slsa02 {
	pr := slsa02{
		Builder:     builderJSON{ID: b.BuilderID},
		BuildType:   buildTypeSLSA02,
		Materials:   ms,
		BuildConfig: cfg,
	}
	pr.Invocation.Parameters = p
	pr.Invocation.Environment.Platform = platform.Format(b.Platform)
	pr.Metadata = metadata02{
		BuildInvocationID: b.InvocationID,
		BuildStartedOn:    timePtr(b.Started),
		BuildFinishedOn:   timePtr(b.Finished),
		Completeness:      completeness02{Parameters: complete, Environment: true, Materials: materialsComplete(b)},
		BuildKit:          meta,
	}
	return pr
}

func slsa1Predicate(b Build, p parametersJSON, complete bool, ms []material, cfg *buildConfig, meta buildkitMetadata) slsa1 {
	var pr slsa1
	d := &pr.BuildDefinition
	d.BuildType = buildTypeSLSA1
	d.ResolvedDependencies = ms
	d.ExternalParameters.Request = p
	d.InternalParameters = internal1{
		BuildConfig:     cfg,
		BuilderPlatform: platform.Format(b.Builder),
		TargetPlatform:  platform.Format(b.Platform),
	}
	pr.RunDetails.Builder.ID = b.BuilderID
	m := &pr.RunDetails.Metadata
	m.InvocationID = b.InvocationID
	m.StartedOn, m.FinishedOn = timePtr(b.Started), timePtr(b.Finished)
	m.BuildKit = meta
	m.Completeness.Request = complete
	m.Completeness.ResolvedDependencies = materialsComplete(b)
	return pr
}

// maxDetails numbers the steps in dependency order (BuildKit's "stepN"),
// and returns the build config, the Dockerfile with each step's lines, and
// the layers of each step's result.
func maxDetails(b Build) (*buildConfig, buildkitMetadata) {
	steps := orderSteps(b.Steps)
	cfg := &buildConfig{DigestMapping: map[digest.Digest]string{}}
	for i, s := range steps {
		cfg.DigestMapping[s.Digest] = fmt.Sprintf("step%d", i)
	}
	var meta buildkitMetadata
	src := &sourceJSON{Locations: map[string]locationsJSON{}}
	for _, s := range steps {
		id := cfg.DigestMapping[s.Digest]
		sj := stepJSON{ID: id, Op: opJSON{Op: s.Op, Platform: s.Platform}}
		for _, in := range s.Inputs {
			if name, ok := cfg.DigestMapping[in.Digest]; ok {
				sj.Inputs = append(sj.Inputs, fmt.Sprintf("%s:%d", name, in.Output))
			}
		}
		cfg.Definition = append(cfg.Definition, sj)
		if len(s.Lines) > 0 {
			// One location per range, as BuildKit writes them.
			var loc locationsJSON
			for _, l := range s.Lines {
				var r rangeJSON
				r.Start.Line, r.End.Line = l[0], l[1]
				loc.Locations = append(loc.Locations, locationJSON{Ranges: []rangeJSON{r}})
			}
			src.Locations[id] = loc
		}
		if layers := b.Layers[s.Digest]; len(layers) > 0 {
			if meta.Layers == nil {
				meta.Layers = map[string][][]ocispec.Descriptor{}
			}
			meta.Layers[id+":0"] = [][]ocispec.Descriptor{layers}
		}
	}
	if b.Dockerfile != nil {
		name := b.DockerfileName
		if name == "" {
			name = "Dockerfile"
		}
		src.Infos = []sourceInfo{{Filename: name, Language: "Dockerfile", Data: b.Dockerfile}}
	}
	if len(src.Locations) > 0 || len(src.Infos) > 0 {
		meta.Source = src
	}
	return cfg, meta
}

// orderSteps returns steps with every step after its inputs, keeping the
// given order otherwise; inputs that are not steps are ignored.
func orderSteps(steps []Step) []Step {
	byDigest := map[digest.Digest]Step{}
	for _, s := range steps {
		byDigest[s.Digest] = s
	}
	done := map[digest.Digest]bool{}
	var out []Step
	var visit func(s Step)
	visit = func(s Step) {
		if done[s.Digest] {
			return
		}
		done[s.Digest] = true // set first: a cycle must not recurse forever
		for _, in := range s.Inputs {
			if dep, ok := byDigest[in.Digest]; ok {
				visit(dep)
			}
		}
		out = append(out, s)
	}
	for _, s := range steps {
		visit(s)
	}
	return out
}
