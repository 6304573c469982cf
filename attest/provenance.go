package attest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Mode is how much a provenance attestation records (--provenance=mode=).
type Mode string

const (
	// ModeMin records the request, the materials and the timestamps.
	ModeMin Mode = "min"
	// ModeMax adds the Dockerfile, its source locations and every step.
	ModeMax Mode = "max"
)

// Version is the SLSA provenance predicate version.
type Version string

const (
	// SLSA02 is https://slsa.dev/provenance/v0.2.
	SLSA02 Version = "v0.2"
	// SLSA1 is https://slsa.dev/provenance/v1, BuildKit v0.34's default.
	SLSA1 Version = "v1"
)

// Predicate types, as in the in-toto.io/predicate-type annotation.
const (
	PredicateSLSA02 = "https://slsa.dev/provenance/v0.2"
	PredicateSLSA1  = "https://slsa.dev/provenance/v1"
	PredicateSPDX   = "https://spdx.dev/Document"
)

// The build types BuildKit writes; tools that read BuildKit's provenance
// key on them, and ours has the same shape.
const (
	buildTypeSLSA02 = "https://mobyproject.org/buildkit@v1"
	buildTypeSLSA1  = "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md"
)

// Build is what a provenance attestation says about one platform's build.
// It holds no secret values by construction: secrets and SSH sockets are
// named by id only, and Provenance drops host-specific options and masks
// credentials in URLs anywhere in the result.
type Build struct {
	BuilderID    string
	Frontend     string            // "dockerfile.v0"
	Args         map[string]string // frontend options: "build-arg:NAME", "target", "context:NAME", "label:NAME"
	Secrets      []Ref
	SSH          []Ref
	Locals       []string // local sources by name: "context", "dockerfile"
	Materials    []Material
	Platform     ocispec.Platform // the target
	Builder      ocispec.Platform // BUILDPLATFORM
	InvocationID string
	Started      time.Time
	Finished     time.Time

	// ModeMax only.
	DockerfileName string
	Dockerfile     []byte
	Steps          []Step
	// Layers maps a step (its first output) to the image layers of its
	// result, base layers first.
	Layers map[digest.Digest][]ocispec.Descriptor
}

// Ref names a secret or SSH socket a build used; never its value or source.
type Ref struct {
	ID       string `json:"id"`
	Optional bool   `json:"optional,omitempty"`
}

// Material is a base image (or other input) by reference and digest.
type Material struct {
	Ref      string // "docker.io/library/alpine:3.20" or "127.0.0.1:5000/busybox:multi"
	Digest   digest.Digest
	Platform *ocispec.Platform // the platform it was resolved for, if an image
}

// Step is one vertex of the build graph in ModeMax.
type Step struct {
	Digest   digest.Digest
	Inputs   []StepInput
	Op       any // the vertex's op, encoded as the graph encodes it
	Platform *ocispec.Platform
	// Lines are the Dockerfile lines (1-based, inclusive ranges) the step
	// comes from.
	Lines [][2]int
}

// StepInput is an input of a step: another step's output.
type StepInput struct {
	Digest digest.Digest
	Output int
}

// Statement is an in-toto statement, as the layers of an attestation
// manifest hold them.
type Statement struct {
	Type          string    `json:"_type"`
	PredicateType string    `json:"predicateType"`
	Subject       []Subject `json:"subject"`
	Predicate     any       `json:"predicate"`
}

// Subject is what a statement is about. BuildKit leaves the list empty in
// attestation manifests: the manifest's subject field names the image.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

const statementType = "https://in-toto.io/Statement/v1"

// Provenance returns the in-toto statement of b's SLSA provenance in
// version v and mode, laid out as BuildKit lays out its own.
func Provenance(b Build, v Version, mode Mode) (Statement, error) {
	if mode != ModeMin && mode != ModeMax {
		return Statement{}, fmt.Errorf("provenance mode %q: want min or max", mode)
	}
	materials, err := materials(b.Materials)
	if err != nil {
		return Statement{}, err
	}
	var cfg *buildConfig
	var meta buildkitMetadata
	if mode == ModeMax {
		cfg, meta = maxDetails(b)
	}
	params, complete := parameters(b, mode)
	st := Statement{Type: statementType, Subject: []Subject{}}
	switch v {
	case SLSA02:
		st.PredicateType = PredicateSLSA02
		st.Predicate = slsa02Predicate(b, params, complete, materials, cfg, meta)
	case SLSA1:
		st.PredicateType = PredicateSLSA1
		st.Predicate = slsa1Predicate(b, params, complete, materials, cfg, meta)
	default:
		return Statement{}, fmt.Errorf("provenance version %q: want v0.2 or v1", v)
	}
	return redactStatement(st)
}

type material struct {
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest"`
}

func materials(ms []Material) ([]material, error) {
	out := []material{}
	for _, m := range ms {
		uri, err := imagePURL(m.Ref, m.Platform)
		if err != nil {
			return nil, fmt.Errorf("provenance material %s: %w", m.Ref, err)
		}
		out = append(out, material{URI: uri, Digest: map[string]string{m.Digest.Algorithm().String(): m.Digest.Encoded()}})
	}
	return out, nil
}

type parametersJSON struct {
	Frontend             string             `json:"frontend,omitempty"`
	Args                 map[string]string  `json:"args,omitempty"`
	Secrets              []Ref              `json:"secrets,omitempty"`
	SSH                  []Ref              `json:"ssh,omitempty"`
	Locals               []localJSON        `json:"locals,omitempty"`
	Root                 *requestProvenance `json:"root,omitempty"`
	CompatibilityVersion int                `json:"compatibilityVersion,omitempty"`
}

type localJSON struct {
	Name string `json:"name"`
}

type requestProvenance struct {
	ConfigSource struct{}        `json:"configSource"`
	Request      *parametersJSON `json:"request,omitempty"`
}

// compatibilityVersion is the provenance layout version BuildKit v0.34
// writes; readers use it to tell layouts apart.
const compatibilityVersion = 30

// parameters is the request part. In mode=min BuildKit leaves out build
// arguments, labels, secret and SSH ids, and then says the request is
// incomplete; parameters does the same and reports it.
func parameters(b Build, mode Mode) (p parametersJSON, complete bool) {
	p = parametersJSON{Frontend: b.Frontend, CompatibilityVersion: compatibilityVersion}
	for _, l := range b.Locals {
		p.Locals = append(p.Locals, localJSON{Name: l})
	}
	p.Args = FilterArgs(b.Args)
	complete = b.Frontend != ""
	if mode == ModeMin {
		for k := range p.Args {
			if strings.HasPrefix(k, "build-arg:") || strings.HasPrefix(k, "label:") {
				delete(p.Args, k)
				complete = false
			}
		}
		if len(p.Args) == 0 {
			p.Args = nil
		}
		return p, complete
	}
	p.Secrets, p.SSH = slices.Clone(b.Secrets), slices.Clone(b.SSH)
	if len(p.Args) > 0 {
		p.Root = &requestProvenance{Request: &parametersJSON{Args: p.Args}}
	}
	return p, complete
}

// FilterArgs drops the frontend options that describe the host rather than
// the build, as BuildKit does (platform, cgroup-parent, image-resolve-mode,
// cache-imports, attest:*), and masks credentials in URL values: a
// proxy build argument or a git context URL keeps its host, not its user
// and password.
func FilterArgs(args map[string]string) map[string]string {
	if len(args) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, v := range args {
		switch {
		case k == "platform", k == "cgroup-parent", k == "image-resolve-mode", k == "cache-imports",
			strings.HasPrefix(k, "attest:"):
			continue
		}
		out[k] = RedactURL(v)
	}
	return out
}

// RedactURL masks the user and password of a URL (as BuildKit's
// urlutil.RedactCredentials does); other strings come back unchanged.
func RedactURL(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	_, hasPass := u.User.Password()
	switch {
	case u.User.Username() != "" && hasPass:
		u.User = url.UserPassword(redacted, redacted)
	case u.User.Username() != "":
		u.User = url.User(redacted)
	case hasPass:
		u.User = url.UserPassword("", redacted)
	}
	return u.String()
}

const redacted = "xxxxx"

// redactStatement masks URL credentials in every string of st, so that
// nothing a caller put into a step or an argument carries a password out.
func redactStatement(st Statement) (Statement, error) {
	raw, err := json.Marshal(st.Predicate)
	if err != nil {
		return Statement{}, fmt.Errorf("encoding provenance: %w", err)
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return Statement{}, err
	}
	st.Predicate = redactTree(tree)
	return st, nil
}

func redactTree(v any) any {
	switch t := v.(type) {
	case string:
		return RedactURLs(t)
	case []any:
		for i := range t {
			t[i] = redactTree(t[i])
		}
	case map[string]any:
		for _, k := range slices.Collect(maps.Keys(t)) {
			t[k] = redactTree(t[k])
		}
	}
	return v
}

// urlUserinfo matches the user[:password]@ part of URLs inside a longer
// string, such as "HTTP_PROXY=http://user:pass@proxy:3128" in a step's
// environment. Compiled on first use, not at every command's start-up.
var urlUserinfo = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@`)
})

// RedactURLs masks the user and password of every URL in s.
func RedactURLs(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return urlUserinfo().ReplaceAllString(s, "${1}"+redacted+":"+redacted+"@")
}
