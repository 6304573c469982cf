package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/builder-dev/builder"

// A layer is a set of packages, named by path patterns relative to the
// module ("x" is x itself, "x/..." is x and everything below it). A package
// belongs to the layer whose pattern matches it most specifically, so
// "cache/remote" can sit above "cache/...". A package may import its own
// sub-packages, its own layer's packages when sameLayer, and those of the
// layers in mayUse.
type layer struct {
	name      string
	patterns  []string
	sameLayer bool
	mayUse    []string
}

// layers, from the bottom up. A package that matches no pattern is in
// "app" (defaultLayer): a new feature package may use everything below
// it, and a lower package that wants to import it has to be placed here
// first, on purpose.
var layers = []layer{
	// Pure values and self-contained helpers: the build graph, platform
	// names, the blob store, internal/ helpers (seccomp, userns, the tar
	// extractor). They know nothing of a build.
	{name: "base", patterns: []string{"llb/...", "platform/...", "cache/content/...", "internal/...", "archive/..."}, sameLayer: true},
	// The state directory's stores: cache metadata and layer directories.
	// They do not know each other; each is used by the layers above.
	{name: "storage", patterns: []string{"cache/...", "snapshot/..."}, mayUse: []string{"base"}},
	// Records of use kept beside the cache's records, in its transactions:
	// last-use times, sizes and the running usage total.
	{name: "cacheuse", patterns: []string{"cache/usage"}, mayUse: []string{"base", "storage"}},
	// What a GC of the stores removes and what du reports: a pure
	// function of the cache's records (package gc reads the state into it
	// and deletes what it plans).
	{name: "gcplan", patterns: []string{"cache/gcplan"}, mayUse: []string{"base", "storage"}},
	// The solver walks an llb graph through small interfaces; it must not
	// know a Dockerfile, a registry or a sandbox (see the solver rule below).
	{name: "engine", patterns: []string{"solver"}, mayUse: []string{"base"}},
	// Dockerfile → llb graph + config: pure, no disk, no registry.
	{name: "frontend", patterns: []string{"frontend/..."}, sameLayer: true, mayUse: []string{"base"}},
	// Image resolution and pull, the build context and its checksums.
	{name: "source", patterns: []string{"source/..."}, sameLayer: true, mayUse: []string{"base", "storage"}},
	// The RUN sandbox (namespaces, cgroups, network) and its init side.
	{name: "sandbox", patterns: []string{"executor/..."}, sameLayer: true, mayUse: []string{"base", "storage"}},
	// The ops that the solver runs: the only layer where the engine meets
	// sources, the sandbox and the stores.
	{name: "ops", patterns: []string{"solver/..."}, sameLayer: true, mayUse: []string{"base", "storage", "engine", "source", "sandbox"}},
	// What leaves a build: image assembly and writing, the local image
	// store, remote cache import/export (it wraps a solver.Cache), the
	// build history (its Recorder listens to solver events).
	{name: "output", patterns: []string{"exporter/...", "imagestore/...", "cache/remote/...", "history/..."}, sameLayer: true, mayUse: []string{"base", "storage", "gcplan", "engine", "source"}},
	// Wiring of one build (and of other whole features): frontend →
	// solver → exporter.
	{name: "app", patterns: []string{"build/..."}, sameLayer: true, mayUse: []string{"base", "storage", "cacheuse", "gcplan", "engine", "frontend", "source", "sandbox", "ops", "output"}},
	// Binaries: flags into option structs.
	{name: "cmd", patterns: []string{"cmd/..."}, sameLayer: true, mayUse: []string{"base", "storage", "cacheuse", "gcplan", "engine", "frontend", "source", "sandbox", "ops", "output", "app"}},
	// Test support: imported by tests only, so no layer may use it.
	{name: "testsupport", patterns: []string{"internal/testutil/...", "internal/faultproxy/..."}, sameLayer: true, mayUse: []string{"base", "storage", "cacheuse", "gcplan", "engine", "frontend", "source", "sandbox", "ops", "output", "app"}},
}

const defaultLayer = "app"

// onlyImports narrows what some packages may import beyond their layer.
var onlyImports = map[string][]string{
	// The graph is a plain value: nothing of ours.
	"llb": {},
	// The solver knows the graph and its own interfaces, nothing else.
	"solver": {"llb"},
}

// executorImporters are the only packages outside executor/... that may
// import executor/... (the sandbox runs processes as root on the host's
// kernel; who may start one stays a short list).
var executorImporters = map[string]string{
	"solver/ops":                     "RUN steps",
	"build":                          "warns before a build whose RUN steps will get the host's network; checks the cgroup limits before any step runs",
	"run":                            "`builder run` and `builder debug` start a sandbox over an image or a kept step",
	"cmd/builder":                    "the hidden init subcommand, resource-limit flags, the network flag and exit codes",
	"cmd/builder-init":               "the small embedded sandbox init binary: it is the executor's init side",
	"cmd/builder/internal/buildopts": "maps the resource-limit flags to executor/cgroup's Resources",
	"kept":                           "a kept failure records the step's executor.Spec (its types only); `builder debug` in run starts the sandbox",
}

type pkg struct {
	ImportPath string
	Imports    []string
	Module     *struct{ Path string }
}

// listPackages returns our packages and their non-test imports of our own
// packages, relative to the module, for one GOOS.
func listPackages(t *testing.T, goos string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", module+"/...")
	cmd.Env = append(os.Environ(), "GOOS="+goos)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list (GOOS=%s): %v\n%s", goos, err, stderr.String())
	}
	pkgs := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		if p.Module == nil || p.Module.Path != module {
			continue
		}
		var ours []string
		for _, imp := range p.Imports {
			if rel, ok := relative(imp); ok {
				ours = append(ours, rel)
			}
		}
		rel, _ := relative(p.ImportPath)
		pkgs[rel] = ours
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list (GOOS=%s) found only %d packages of %s: %v", goos, len(pkgs), module, pkgs)
	}
	return pkgs
}

func relative(path string) (string, bool) {
	if path == module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

// match reports whether pattern matches pkg, and how specific the match
// is (the pattern's length, a bare path beating "/..." of the same path).
func match(pattern, pkg string) (int, bool) {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		if pkg == base || strings.HasPrefix(pkg, base+"/") {
			return 2 * len(base), true
		}
		return 0, false
	}
	return 2*len(pattern) + 1, pattern == pkg
}

// layerOf returns the layer a package is in.
func layerOf(pkg string) *layer {
	best, bestScore := (*layer)(nil), -1
	for i := range layers {
		for _, p := range layers[i].patterns {
			if score, ok := match(p, pkg); ok && score > bestScore {
				best, bestScore = &layers[i], score
			}
		}
	}
	if best == nil {
		for i := range layers {
			if layers[i].name == defaultLayer {
				return &layers[i]
			}
		}
	}
	return best
}

// violations lists every import that breaks a rule, one line each.
func violations(pkgs map[string][]string) []string {
	var out []string
	for from, imports := range pkgs {
		lf := layerOf(from)
		for _, to := range imports {
			lt := layerOf(to)
			switch {
			case onlyImports[from] != nil && !slices.Contains(onlyImports[from], to):
				out = append(out, fmt.Sprintf("%s imports %s: %s may import only %v of ours", from, to, from, onlyImports[from]))
			case lf == lt && !lf.sameLayer && !strings.HasPrefix(to, from+"/"):
				out = append(out, fmt.Sprintf("%s imports %s: both are in layer %q, whose packages must not import each other", from, to, lf.name))
			case lf != lt && !slices.Contains(lf.mayUse, lt.name):
				out = append(out, fmt.Sprintf("%s (layer %q) imports %s (layer %q): %q may use only %v", from, lf.name, to, lt.name, lf.name, lf.mayUse))
			}
			if inExecutor(to) && !inExecutor(from) {
				if _, ok := executorImporters[from]; !ok {
					out = append(out, fmt.Sprintf("%s imports %s: only solver/ops, build, run and the commands start sandboxes (executorImporters)", from, to))
				}
			}
		}
	}
	for from, allowed := range onlyImports {
		if _, ok := pkgs[from]; ok && allowed != nil {
			continue
		}
		out = append(out, fmt.Sprintf("onlyImports names %s, which go list does not show", from))
	}
	sort.Strings(out)
	return out
}

func inExecutor(pkg string) bool { return pkg == "executor" || strings.HasPrefix(pkg, "executor/") }

func TestArchitecture(t *testing.T) {
	for _, goos := range []string{"linux", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			pkgs := listPackages(t, goos)
			for _, v := range violations(pkgs) {
				t.Error(v)
			}
			// Every exception must still be needed, or it is a hole.
			if goos == "linux" {
				for imp, why := range executorImporters {
					if !slices.ContainsFunc(pkgs[imp], inExecutor) {
						t.Errorf("executorImporters lists %s (%s), which no longer imports executor/...: remove it", imp, why)
					}
				}
			}
		})
	}
}

// TestRulesCatchBadImports feeds the checker an import graph with one bad
// edge per rule, so a rule that stops catching anything fails here.
func TestRulesCatchBadImports(t *testing.T) {
	good := map[string][]string{
		"llb":                 nil,
		"solver":              {"llb"},
		"cache":               {"cache/content"},
		"cache/content":       nil,
		"snapshot":            {"snapshot/treecopy"},
		"snapshot/treecopy":   nil,
		"executor":            {"snapshot", "executor/cgroup"},
		"executor/cgroup":     nil,
		"solver/ops":          {"solver", "executor", "source"},
		"source":              {"cache", "snapshot"},
		"build":               {"solver/ops", "executor", "exporter"},
		"exporter":            {"source"},
		"cache/remote":        {"solver", "exporter", "cache"},
		"cmd/builder":         {"build", "executor"},
		"cmd/builder-init":    {"executor"},
		"frontend/dockerfile": {"llb"},
	}
	if v := violations(good); len(v) != 0 {
		t.Fatalf("violations(good graph) = %v, want none", v)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"llb", "cache/content", "llb may import only"},
		{"solver", "source", "solver may import only"},
		{"exporter", "executor", "only solver/ops, build, run and the commands"},
		{"frontend/dockerfile", "executor", "only solver/ops, build, run and the commands"},
		{"cache", "solver", `layer "engine"`},
		{"snapshot", "cache", `both are in layer "storage"`},
		{"snapshot/treecopy", "cache", `both are in layer "storage"`},
		{"cache", "build", `layer "app"`},
		{"source", "solver/ops", `layer "ops"`},
		{"build", "cmd/builder", `layer "cmd"`},
		{"build", "internal/testutil", `layer "testsupport"`},
		{"cache/content", "cache", `layer "storage"`},
	} {
		g := map[string][]string{}
		for k, v := range good {
			g[k] = slices.Clone(v)
		}
		g[tc.from] = append(g[tc.from], tc.to)
		v := violations(g)
		if len(v) == 0 || !slices.ContainsFunc(v, func(s string) bool { return strings.Contains(s, tc.want) }) {
			t.Errorf("violations(good + %s → %s) = %q, want one containing %q", tc.from, tc.to, v, tc.want)
		}
	}
}
