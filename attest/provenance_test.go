package attest

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testBuild is the build of testdata/buildkit/README.md, as the build
// package would describe it, plus a proxy with credentials and a secret
// whose value and source path must not appear anywhere.
func testBuild() Build {
	amd64 := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	base := Step{Digest: digest.FromString("base"), Op: map[string]any{"image": "127.0.0.1:5077/busybox:multi"}, Platform: &amd64, Lines: [][2]int{{4, 4}, {1, 1}}}
	run := Step{Digest: digest.FromString("run"), Inputs: []StepInput{{Digest: base.Digest}}, Platform: &amd64, Lines: [][2]int{{3, 3}},
		Op: map[string]any{"exec": map[string]any{"args": []string{"/bin/sh", "-c", "echo $TARGETARCH > /arch"},
			"env": []string{"HTTP_PROXY=http://proxyuser:proxypass@proxy.example:3128", "TARGETARCH=amd64"}}}}
	cp := Step{Digest: digest.FromString("copy"), Inputs: []StepInput{{Digest: base.Digest}, {Digest: run.Digest}}, Lines: [][2]int{{6, 6}},
		Op: map[string]any{"copy": map[string]any{"src": "/arch", "dest": "/arch"}}}
	// Listed before its inputs: Provenance orders steps itself.
	secret := Step{Digest: digest.FromString("secret"), Inputs: []StepInput{{Digest: cp.Digest}}, Platform: &amd64, Lines: [][2]int{{7, 7}},
		Op: map[string]any{"exec": map[string]any{"args": []string{"/bin/sh", "-c", "uname -m > /m"},
			"mounts": []map[string]any{{"dest": "/run/secrets/tok", "secret": "tok"}}}}}
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("layer"), Size: 106}
	return Build{
		BuilderID: "https://github.com/builder-dev/builder",
		Frontend:  "dockerfile.v0",
		Args: map[string]string{
			"build-arg:FOO":         "bar",
			"build-arg:HTTPS_PROXY": "https://proxyuser:proxypass@proxy.example:3128",
			"platform":              "linux/amd64",
			"attest:provenance":     "mode=max",
		},
		Secrets:        []Ref{{ID: "tok", Optional: true}},
		Locals:         []string{"context", "dockerfile"},
		Materials:      []Material{{Ref: "127.0.0.1:5077/busybox:multi", Digest: digest.FromString("index"), Platform: &amd64}},
		Platform:       amd64,
		Builder:        amd64,
		InvocationID:   "inv1",
		Started:        time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Finished:       time.Date(2026, 1, 2, 3, 4, 9, 0, time.UTC),
		DockerfileName: "Dockerfile",
		Dockerfile:     []byte("FROM --platform=$BUILDPLATFORM 127.0.0.1:5077/busybox:multi AS b\n"),
		Steps:          []Step{secret, base, run, cp},
		Layers:         map[digest.Digest][]ocispec.Descriptor{cp.Digest: {layer}},
	}
}

// secretValues must never appear in a provenance document.
var secretValues = []string{"proxyuser", "proxypass", "gituser", "gitpass", "SECRETVALUE", "/home/me/token.txt"}

func marshal(t *testing.T, st Statement) string {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProvenanceHasNoSecrets(t *testing.T) {
	for _, v := range []Version{SLSA02, SLSA1} {
		for _, m := range []Mode{ModeMin, ModeMax} {
			b := testBuild()
			b.Args["context:src"] = "https://gituser:gitpass@git.example/repo.git#main"
			st, err := Provenance(b, v, m)
			if err != nil {
				t.Fatal(err)
			}
			out := marshal(t, st)
			for _, s := range secretValues {
				if strings.Contains(out, s) {
					t.Errorf("provenance %s mode=%s contains %q:\n%s", v, m, s, out)
				}
			}
			if m == ModeMax {
				for _, want := range []string{`"id":"tok"`, "proxy.example:3128", "git.example/repo.git", "xxxxx:xxxxx@"} {
					if !strings.Contains(out, want) {
						t.Errorf("provenance %s mode=max lacks %q:\n%s", v, want, out)
					}
				}
			}
		}
	}
}

func TestProvenanceContents(t *testing.T) {
	st, err := Provenance(testBuild(), SLSA02, ModeMax)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		PredicateType string `json:"predicateType"`
		Predicate     struct {
			Builder    struct{ ID string } `json:"builder"`
			BuildType  string              `json:"buildType"`
			Materials  []material          `json:"materials"`
			Invocation struct {
				Parameters  parametersJSON            `json:"parameters"`
				Environment struct{ Platform string } `json:"environment"`
			} `json:"invocation"`
			BuildConfig buildConfig `json:"buildConfig"`
			Metadata    struct {
				BuildStartedOn  time.Time      `json:"buildStartedOn"`
				BuildFinishedOn time.Time      `json:"buildFinishedOn"`
				Completeness    completeness02 `json:"completeness"`
				BuildKit        struct {
					Source sourceJSON                        `json:"source"`
					Layers map[string][][]ocispec.Descriptor `json:"layers"`
				} `json:"https://mobyproject.org/buildkit@v1#metadata"`
			} `json:"metadata"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal([]byte(marshal(t, st)), &doc); err != nil {
		t.Fatal(err)
	}
	p := doc.Predicate
	if doc.PredicateType != PredicateSLSA02 || p.BuildType != buildTypeSLSA02 || p.Builder.ID != "https://github.com/builder-dev/builder" {
		t.Errorf("type %s, buildType %s, builder %q", doc.PredicateType, p.BuildType, p.Builder.ID)
	}
	wantMat := "pkg:docker/127.0.0.1:5077/busybox@multi?platform=linux%2Famd64"
	if len(p.Materials) != 1 || p.Materials[0].URI != wantMat || p.Materials[0].Digest["sha256"] != digest.FromString("index").Encoded() {
		t.Errorf("materials = %+v, want %s with the index digest", p.Materials, wantMat)
	}
	args := p.Invocation.Parameters.Args
	if args["build-arg:FOO"] != "bar" || args["platform"] != "" || args["attest:provenance"] != "" {
		t.Errorf("args = %v: want build-arg:FOO, and not platform or attest:*", args)
	}
	if p.Invocation.Environment.Platform != "linux/amd64" {
		t.Errorf("environment platform = %q", p.Invocation.Environment.Platform)
	}
	if !p.Metadata.BuildStartedOn.Equal(testBuild().Started) || !p.Metadata.BuildFinishedOn.Equal(testBuild().Finished) {
		t.Errorf("timestamps %v %v", p.Metadata.BuildStartedOn, p.Metadata.BuildFinishedOn)
	}
	if c := p.Metadata.Completeness; !c.Parameters || !c.Environment || c.Materials {
		t.Errorf("completeness = %+v: want parameters and environment, not materials (the build read a local context)", c)
	}
	// Steps come in dependency order, each input named by an earlier step.
	var ids []string
	for i, s := range p.BuildConfig.Definition {
		for _, in := range s.Inputs {
			name, _, _ := strings.Cut(in, ":")
			if !slices.Contains(ids, name) {
				t.Errorf("step %d (%s) has input %s before it is defined", i, s.ID, in)
			}
		}
		ids = append(ids, s.ID)
	}
	if len(ids) != 4 || p.BuildConfig.DigestMapping[digest.FromString("secret")] != "step3" {
		t.Errorf("steps %v, mapping %v", ids, p.BuildConfig.DigestMapping)
	}
	src := p.Metadata.BuildKit.Source
	if len(src.Infos) != 1 || string(src.Infos[0].Data) != string(testBuild().Dockerfile) || len(src.Locations["step0"].Locations) != 2 {
		t.Errorf("source = %+v", src)
	}
	if l := p.Metadata.BuildKit.Layers["step2:0"]; len(l) != 1 || len(l[0]) != 1 || l[0][0].Size != 106 {
		t.Errorf("layers = %+v, want the copy step's layer as step2:0", p.Metadata.BuildKit.Layers)
	}
}

func TestProvenanceMinLeavesOutArgs(t *testing.T) {
	for _, v := range []Version{SLSA02, SLSA1} {
		st, err := Provenance(testBuild(), v, ModeMin)
		if err != nil {
			t.Fatal(err)
		}
		out := marshal(t, st)
		for _, absent := range []string{"build-arg:", `"secrets"`, "llbDefinition", "step0", `"data"`} {
			if strings.Contains(out, absent) {
				t.Errorf("%s mode=min contains %s:\n%s", v, absent, out)
			}
		}
		// BuildKit then says the request is incomplete.
		if !strings.Contains(out, `"parameters":false`) && !strings.Contains(out, `"request":false`) {
			t.Errorf("%s mode=min does not mark the request incomplete:\n%s", v, out)
		}
	}
	if _, err := Provenance(testBuild(), SLSA1, "full"); err == nil {
		t.Error("mode=full: no error")
	}
	if _, err := Provenance(testBuild(), "v9", ModeMax); err == nil {
		t.Error("version v9: no error")
	}
}

// keyPaths lists the object keys of a JSON document as dotted paths, with
// array elements as [] and the keys of maps keyed by data (digests, step
// ids) as *.
func keyPaths(v any, prefix string, out map[string]bool) {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			name := k
			switch {
			case strings.HasPrefix(k, "sha256:"), strings.HasPrefix(k, "step"), strings.HasPrefix(k, "build-arg:"):
				name = "*"
			}
			p := prefix + "." + name
			out[p] = true
			if strings.HasSuffix(prefix, "llbDefinition[].op") {
				continue // the op itself: BuildKit's LLB, our graph's own encoding
			}
			keyPaths(c, p, out)
		}
	case []any:
		for _, c := range t {
			keyPaths(c, prefix+"[]", out)
		}
	}
}

// TestProvenanceShapeMatchesBuildKit compares the JSON keys of our
// provenance with those of BuildKit's for the same Dockerfile. The only
// differences allowed are listed: what BuildKit knows about itself (its
// Dockerfile frontend version, the LLB of loading the Dockerfile) and step
// fields that are LLB's.
func TestProvenanceShapeMatchesBuildKit(t *testing.T) {
	allowed := []string{
		"dockerfileVersion", "infos[].llbDefinition", "infos[].digestMapping",
		"llbDefinition[].op.", // LLB op internals
	}
	for _, tc := range []struct {
		file string
		v    Version
		m    Mode
		drop func(*Build)
	}{
		{"provenance-v0.2-max.json", SLSA02, ModeMax, func(b *Build) { b.Args["target"] = "" }},
		{"provenance-v1-max.json", SLSA1, ModeMax, nil},
		{"provenance-v0.2-min.json", SLSA02, ModeMin, func(b *Build) { b.Args = nil }},
	} {
		var theirs any
		readJSON(t, tc.file, &theirs)
		b := testBuild()
		if tc.drop != nil {
			tc.drop(&b)
		}
		st, err := Provenance(b, tc.v, tc.m)
		if err != nil {
			t.Fatal(err)
		}
		var ours any
		if err := json.Unmarshal([]byte(marshal(t, st)), &ours); err != nil {
			t.Fatal(err)
		}
		want, got := map[string]bool{}, map[string]bool{}
		keyPaths(theirs, "", want)
		keyPaths(ours, "", got)
		var diff []string
		for p := range want {
			if !got[p] && !isAllowed(p, allowed) {
				diff = append(diff, "missing "+p)
			}
		}
		for p := range got {
			if !want[p] && !isAllowed(p, allowed) {
				diff = append(diff, "extra   "+p)
			}
		}
		sort.Strings(diff)
		if len(diff) > 0 {
			t.Errorf("%s: our provenance differs from BuildKit's:\n%s", tc.file, strings.Join(diff, "\n"))
		}
	}
}

func isAllowed(p string, allowed []string) bool {
	for _, a := range allowed {
		if strings.Contains(p, a) {
			return true
		}
	}
	return false
}
