package build_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/zstd"
)

var (
	update = flag.Bool("update", false,
		"TestConformance: rewrite testdata/conformance/*/expected.json from builder's output (cases that build and are not PENDING)")
	withBuildah = flag.Bool("conformance.buildah", false,
		"TestConformanceBuildah: build every case with Debian's buildah too and log where it differs from expected.json")
	caseFilter = flag.String("conformance.case", "", "only run conformance cases whose name contains this")
)

const conformanceDir = "../testdata/conformance"

// confExpected is a case's expected.json.
type confExpected struct {
	// Note says where BuildKit and buildah differ and which one we follow.
	Note string `json:"note,omitempty"`
	// Error lists substrings of the error of a build that must fail.
	Error  []string    `json:"error,omitempty"`
	Config *confConfig `json:"config,omitempty"`
	// Author is the image's author (MAINTAINER).
	Author string `json:"author,omitempty"`
	// History, when present, lists the history entries after the base
	// image's; it is hand-written (-update keeps it).
	History []confHistory `json:"history,omitempty"`
	// Files are the entries of the final file tree that differ from the
	// base image's tree.
	Files []confFile `json:"files"`
}

// confConfig is the part of the image config a case checks. Every field
// is compared: absent means empty in the image.
type confConfig struct {
	Env          []string            `json:"Env,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	User         string              `json:"User,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	Shell        []string            `json:"Shell,omitempty"`
	Healthcheck  *confHealth         `json:"Healthcheck,omitempty"`
	OnBuild      []string            `json:"OnBuild,omitempty"`
}

// confHealth is Docker's HealthConfig; durations in nanoseconds.
type confHealth struct {
	Test          []string `json:"Test,omitempty"`
	Interval      int64    `json:"Interval,omitempty"`
	Timeout       int64    `json:"Timeout,omitempty"`
	StartPeriod   int64    `json:"StartPeriod,omitempty"`
	StartInterval int64    `json:"StartInterval,omitempty"`
	Retries       int      `json:"Retries,omitempty"`
}

type confHistory struct {
	CreatedBy  string `json:"created_by"`
	EmptyLayer bool   `json:"empty_layer,omitempty"`
}

// confFile is one entry of a flattened file tree.
type confFile struct {
	Path    string `json:"path"`
	Deleted bool   `json:"deleted,omitempty"`
	Type    string `json:"type,omitempty"`
	Mode    string `json:"mode,omitempty"`
	UID     *int   `json:"uid,omitempty"`
	GID     *int   `json:"gid,omitempty"`
	Size    *int64 `json:"size,omitempty"`
	Link    string `json:"link,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	// Mtime (Unix seconds) is checked only when the expected entry has it.
	Mtime *int64 `json:"mtime,omitempty"`
}

// line is the entry as one comparable line, without mtime unless
// withMtime.
func (f confFile) line(withMtime bool) string {
	if f.Deleted {
		return f.Path + " deleted"
	}
	s := fmt.Sprintf("%s %s %s %d:%d size=%d", f.Path, f.Type, f.Mode, deref(f.UID), deref(f.GID), deref(f.Size))
	if f.Link != "" {
		s += " -> " + f.Link
	}
	if f.SHA256 != "" {
		s += " sha256=" + f.SHA256
	}
	if withMtime && f.Mtime != nil {
		s += " mtime=" + strconv.FormatInt(*f.Mtime, 10)
	}
	return s
}

func deref[T int | int64](p *T) T {
	if p == nil {
		return 0
	}
	return *p
}

// confBuildJSON is a case's optional build.json.
type confBuildJSON struct {
	BuildArgs map[string]string `json:"buildArgs,omitempty"`
	Target    string            `json:"target,omitempty"`
}

// confEnv is what every case shares: the registry with the base images,
// the HTTP server for ADD of URLs, and the token values.
type confEnv struct {
	tokens   map[string]string
	baseTree map[string]confFile
	baseDiff v1.Hash
	httpRoot string
	httpURL  string
}

// confBases pushes the base images every token names and returns the
// environment.
func confBases(t *testing.T) *confEnv {
	reg := testutil.InProcessRegistry(t)
	bb := testutil.BusyboxImage(t)
	testutil.PushImage(t, bb, reg+"/busybox:1")
	dgst, err := bb.Digest()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := bb.Layers()
	if err != nil {
		t.Fatal(err)
	}
	baseDiff, err := layers[0].DiffID()
	if err != nil {
		t.Fatal(err)
	}
	withConfig := func(f func(*v1.Config)) v1.Image {
		cf, err := bb.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		f(&cf.Config)
		img, err := mutate.ConfigFile(bb, cf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	onbuild := withConfig(func(c *v1.Config) {
		c.OnBuild = []string{
			"ENV ONBUILD_ENV=from-trigger",
			`RUN echo "trigger saw ONBUILD_ENV=$ONBUILD_ENV" > /onbuild.txt`,
		}
	})
	testutil.PushImage(t, onbuild, reg+"/onbuild-base:1")
	configBase := withConfig(func(c *v1.Config) {
		c.Env = append(c.Env, "BASE_ENV=from-base")
		c.Entrypoint = []string{"/bin/echo", "base-entrypoint"}
		c.Cmd = []string{"base-cmd"}
		c.WorkingDir = "/tmp"
		c.Labels = map[string]string{"base.label": "base", "shared": "from-base"}
		c.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
		c.StopSignal = "SIGQUIT"
	})
	testutil.PushImage(t, configBase, reg+"/config-base:1")

	httpRoot := t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(httpRoot)))
	t.Cleanup(srv.Close)

	env := &confEnv{
		tokens: map[string]string{
			"{{REGISTRY}}":       reg,
			"{{BUSYBOX}}":        reg + "/busybox:1",
			"{{BUSYBOX_DIGEST}}": dgst.String(),
			"{{ONBUILD_BASE}}":   reg + "/onbuild-base:1",
			"{{CONFIG_BASE}}":    reg + "/config-base:1",
		},
		baseDiff: baseDiff,
		httpRoot: httpRoot,
		httpURL:  srv.URL,
	}
	env.baseTree, err = flatten(map[string]confFile{}, layers)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// confCase is one directory of testdata/conformance.
type confCase struct {
	name, dir  string
	dockerfile []byte
	opts       confBuildJSON
	want       confExpected
	haveWant   bool
	contextDir string
}

func loadPending(t *testing.T) map[string]string {
	f, err := os.Open(filepath.Join(conformanceDir, "PENDING"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pending := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason, _ := strings.Cut(line, "#")
		name = strings.TrimSpace(name)
		reason = strings.TrimSpace(reason)
		if reason == "" {
			t.Errorf("PENDING: %s has no `# reason`", name)
		}
		pending[name] = reason
	}
	return pending
}

func caseNames(t *testing.T) []string {
	entries, err := os.ReadDir(conformanceDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

// prepare reads a case and writes its context (with context.gen applied)
// into a temp dir, and its HTTP files under env.httpRoot/<case>/.
func (env *confEnv) prepare(t *testing.T, name string) *confCase {
	t.Helper()
	c := &confCase{name: name, dir: filepath.Join(conformanceDir, name)}
	df, err := os.ReadFile(filepath.Join(c.dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	c.dockerfile = []byte(env.expand(string(df), name))
	if b, err := os.ReadFile(filepath.Join(c.dir, "build.json")); err == nil {
		if err := json.Unmarshal(b, &c.opts); err != nil {
			t.Fatalf("build.json: %v", err)
		}
		for k, v := range c.opts.BuildArgs {
			c.opts.BuildArgs[k] = env.expand(v, name)
		}
	}
	if b, err := os.ReadFile(filepath.Join(c.dir, "expected.json")); err == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c.want); err != nil {
			t.Fatalf("expected.json: %v", err)
		}
		c.haveWant = true
	}
	c.contextDir = t.TempDir()
	if err := copyTree(filepath.Join(c.dir, "context"), c.contextDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	httpDir := filepath.Join(env.httpRoot, name)
	if err := os.MkdirAll(httpDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyTree(filepath.Join(c.dir, "http"), httpDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err := runContextGen(c.dir, c.contextDir, httpDir); err != nil {
		t.Fatalf("context.gen: %v", err)
	}
	return c
}

func (env *confEnv) expand(s, caseName string) string {
	for k, v := range env.tokens {
		s = strings.ReplaceAll(s, k, v)
	}
	return strings.ReplaceAll(s, "{{HTTP}}", env.httpURL+"/"+caseName)
}

// TestConformance builds every case of testdata/conformance and compares
// the image's config and file tree to expected.json. Cases listed in
// PENDING must still fail; every other case must pass.
func TestConformance(t *testing.T) {
	testutil.RequiresRoot(t)
	env := confBases(t)
	pending := loadPending(t)
	names := caseNames(t)
	for p := range pending {
		if !slices.Contains(names, p) {
			t.Errorf("PENDING names %s, which is not a case", p)
		}
	}
	st := openState(t, t.TempDir())
	for _, name := range names {
		if *caseFilter != "" && !strings.Contains(name, *caseFilter) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			c := env.prepare(t, name)
			problems, got := env.run(t, st, c)
			reason, isPending := pending[name]
			// A PENDING case's expected.json holds what builder should
			// make, not what it makes: -update leaves it alone.
			if *update && got != nil && !isPending {
				writeExpected(t, c, got)
				return
			}
			switch {
			case isPending && len(problems) == 0:
				t.Errorf("case passes but is listed in PENDING (%s): remove it from testdata/conformance/PENDING", reason)
			case isPending:
				t.Skipf("PENDING (%s); first problem: %s", reason, firstLine(problems[0]))
			default:
				for _, p := range problems {
					t.Error(p)
				}
			}
		})
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// run builds a case and returns what differs from expected.json, and the
// observed expectation when the build succeeded.
func (env *confEnv) run(t *testing.T, st *build.State, c *confCase) ([]string, *confExpected) {
	ev := newEvents()
	res, err := st.Build(t.Context(), build.Options{
		ContextDir:     c.contextDir,
		Dockerfile:     c.dockerfile,
		DockerfileName: "Dockerfile",
		BuildArgs:      c.opts.BuildArgs,
		Target:         c.opts.Target,
		Progress:       ev,
	})
	if err != nil {
		if c.haveWant && len(c.want.Error) > 0 {
			var problems []string
			for _, w := range c.want.Error {
				if !strings.Contains(err.Error(), env.expand(w, c.name)) {
					problems = append(problems, fmt.Sprintf("error %q does not contain %q", err, w))
				}
			}
			return problems, nil
		}
		return []string{fmt.Sprintf("build failed: %v\n%s", err, ev.logs.String())}, nil
	}
	img, err := exporter.V1Image(st.Content, res.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := env.observe(img)
	if err != nil {
		t.Fatal(err)
	}
	if !c.haveWant {
		return []string{"no expected.json; write one or run with -update"}, got
	}
	if len(c.want.Error) > 0 {
		return []string{fmt.Sprintf("build succeeded, want an error containing %q", c.want.Error)}, got
	}
	return compare(&c.want, got), got
}

// observe reads an image's config and its file tree relative to the base.
func (env *confEnv) observe(img v1.Image) (*confExpected, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	var cf struct {
		Author  string     `json:"author"`
		Config  confConfig `json:"config"`
		History []struct {
			CreatedBy  string `json:"created_by"`
			Comment    string `json:"comment"`
			EmptyLayer bool   `json:"empty_layer"`
		} `json:"history"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(raw, &cf); err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	out := &confExpected{Config: &cf.Config, Author: cf.Author}
	for _, h := range cf.History {
		if h.Comment == "test base image" {
			continue
		}
		out.History = append(out.History, confHistory{CreatedBy: h.CreatedBy, EmptyLayer: h.EmptyLayer})
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	// An image on busybox is compared to busybox's tree, which is
	// flattened once, not per case.
	base, start := map[string]confFile{}, map[string]confFile{}
	if len(cf.RootFS.DiffIDs) > 0 && cf.RootFS.DiffIDs[0] == env.baseDiff.String() {
		base, start = env.baseTree, maps.Clone(env.baseTree)
		layers = layers[1:]
	}
	tree, err := flatten(start, layers)
	if err != nil {
		return nil, err
	}
	out.Files = treeDiff(base, tree)
	return out, nil
}

// flatten applies layers in order, with OCI whiteouts, onto tree (path ->
// entry) and returns it.
func flatten(tree map[string]confFile, layers []v1.Layer) (map[string]confFile, error) {
	removeUnder := func(dir string, self bool) {
		for p := range tree {
			if (self && p == dir) || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") {
				delete(tree, p)
			}
		}
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		// Whiteouts apply to the layers below only: collect this layer's
		// entries first.
		var adds []confFile
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rc.Close()
				return nil, err
			}
			p := cleanPath(hdr.Name)
			dir, base := path.Split(p)
			switch {
			case base == ".wh..wh..opq":
				removeUnder(dir, false)
				continue
			case strings.HasPrefix(base, ".wh."):
				removeUnder(path.Join(dir, strings.TrimPrefix(base, ".wh.")), true)
				continue
			}
			f, err := entry(p, hdr, tr)
			if err != nil {
				rc.Close()
				return nil, err
			}
			adds = append(adds, f)
		}
		rc.Close()
		for _, f := range adds {
			if old, ok := tree[f.Path]; ok && old.Type == "dir" && f.Type != "dir" {
				removeUnder(f.Path, false)
			}
			tree[f.Path] = f
		}
	}
	return tree, nil
}

func cleanPath(p string) string {
	return path.Clean("/" + strings.TrimPrefix(p, "./"))
}

func entry(p string, hdr *tar.Header, r io.Reader) (confFile, error) {
	uid, gid, size := hdr.Uid, hdr.Gid, int64(0)
	mtime := hdr.ModTime.Unix()
	f := confFile{Path: p, UID: &uid, GID: &gid, Size: &size, Mtime: &mtime}
	mode := hdr.FileInfo().Mode()
	perm := int64(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		perm |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		perm |= 0o1000
	}
	f.Mode = fmt.Sprintf("%04o", perm)
	switch hdr.Typeflag {
	case tar.TypeReg:
		f.Type = "file"
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil {
			return f, err
		}
		size = n
		f.SHA256 = hex.EncodeToString(h.Sum(nil))
	case tar.TypeDir:
		f.Type = "dir"
	case tar.TypeSymlink:
		f.Type = "symlink"
		f.Link = hdr.Linkname
	case tar.TypeLink:
		f.Type = "hardlink"
		f.Link = cleanPath(hdr.Linkname)
	default:
		f.Type = "other"
	}
	return f, nil
}

// treeDiff lists the entries of tree that are new or differ from base
// (mtime aside), and base's entries that tree lacks, by path.
func treeDiff(base, tree map[string]confFile) []confFile {
	out := []confFile{}
	for p, f := range tree {
		if b, ok := base[p]; !ok || b.line(false) != f.line(false) {
			out = append(out, f)
		}
	}
	for p := range base {
		if _, ok := tree[p]; !ok {
			out = append(out, confFile{Path: p, Deleted: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// compare returns a diff-like message per part of want that got differs in.
func compare(want, got *confExpected) []string {
	var problems []string
	wc, gc := want.Config, got.Config
	if wc == nil {
		wc = &confConfig{}
	}
	wj, _ := json.MarshalIndent(wc, "", "  ")
	gj, _ := json.MarshalIndent(gc, "", "  ")
	if !bytes.Equal(wj, gj) {
		problems = append(problems, "config differs (- want, + got):\n"+lineDiff(strings.Split(string(wj), "\n"), strings.Split(string(gj), "\n")))
	}
	if want.Author != got.Author {
		problems = append(problems, fmt.Sprintf("author = %q, want %q", got.Author, want.Author))
	}
	if want.History != nil {
		var w, g []string
		for _, h := range want.History {
			w = append(w, fmt.Sprintf("%q empty_layer=%v", h.CreatedBy, h.EmptyLayer))
		}
		for _, h := range got.History {
			g = append(g, fmt.Sprintf("%q empty_layer=%v", h.CreatedBy, h.EmptyLayer))
		}
		if !slices.Equal(w, g) {
			problems = append(problems, "history differs (- want, + got):\n"+lineDiff(w, g))
		}
	}
	var w, g []string
	mtimes := map[string]bool{}
	for _, f := range want.Files {
		w = append(w, f.line(true))
		if f.Mtime != nil {
			mtimes[f.Path] = true
		}
	}
	for _, f := range got.Files {
		g = append(g, f.line(mtimes[f.Path]))
	}
	if !slices.Equal(w, g) {
		problems = append(problems, "file tree differs from the base's (- want, + got):\n"+lineDiff(w, g))
	}
	return problems
}

// lineDiff marks the lines only in want with "-" and only in got with "+",
// keeping common lines as context.
func lineDiff(want, got []string) string {
	// Longest common subsequence; the lists are small.
	n, m := len(want), len(got)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && want[i] == got[j]:
			b.WriteString("  " + want[i] + "\n")
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			b.WriteString("+ " + got[j] + "\n")
			j++
		default:
			b.WriteString("- " + want[i] + "\n")
			i++
		}
	}
	return b.String()
}

// writeExpected rewrites a case's expected.json from what builder made,
// keeping the hand-written note and history. Cases that expect an error
// are left alone.
func writeExpected(t *testing.T, c *confCase, got *confExpected) {
	if c.haveWant && len(c.want.Error) > 0 {
		t.Logf("expects an error but built; expected.json left alone")
		return
	}
	out := *got
	out.Note = c.want.Note
	out.History = c.want.History
	for i := range out.Files {
		out.Files[i].Mtime = nil
		for _, w := range c.want.Files {
			if w.Path == out.Files[i].Path && w.Mtime != nil {
				out.Files[i].Mtime = got.Files[i].Mtime
			}
		}
	}
	if out.Config != nil && out.Config.Healthcheck != nil && len(out.Config.Healthcheck.Test) == 0 {
		out.Config.Healthcheck = nil
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "expected.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies src into dst with normalised metadata: files 0644 (0755
// when any execute bit is set), directories 0755, symlinks as they are.
func copyTree(src, dst string) error {
	if _, err := os.Lstat(src); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			mode := fs.FileMode(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			if err := os.WriteFile(target, b, mode); err != nil {
				return err
			}
			return os.Chmod(target, mode)
		}
	})
}

// genTime is the mtime of everything context.gen makes.
var genTime = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// runContextGen applies a case's context.gen recipe, one command a line:
//
//	tar NAME DIR          archive of the case's DIR as context/NAME (or,
//	                      for http/NAME, served as {{HTTP}}/NAME); the
//	                      compression follows NAME's suffix: .tar .tar.gz
//	                      .tgz .tar.bz2 .tar.xz .tar.zst
//	mkdir PATH MODE       an (empty) directory in the context
//	chmod MODE PATH       change a context file's mode
//	symlink TARGET PATH   a symlink in the context
//	hardlink TARGET PATH  a hard link in the context
//	mtime UNIX PATH       set a context file's mtime (Unix seconds)
//	git NAME DIR          a bare git repository of DIR, one commit, served
//	                      (dumb HTTP) as {{HTTP}}/NAME
func runContextGen(caseDir, ctxDir, httpDir string) error {
	b, err := os.ReadFile(filepath.Join(caseDir, "context.gen"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 3 {
			return fmt.Errorf("line %d: want 3 fields: %q", i+1, line)
		}
		err := func() error {
			switch f[0] {
			case "tar":
				dest := filepath.Join(ctxDir, f[1])
				if rest, ok := strings.CutPrefix(f[1], "http/"); ok {
					dest = filepath.Join(httpDir, rest)
				}
				return writeArchive(filepath.Join(caseDir, f[2]), dest)
			case "mkdir":
				mode, err := strconv.ParseUint(f[2], 8, 32)
				if err != nil {
					return err
				}
				p := filepath.Join(ctxDir, f[1])
				if err := os.MkdirAll(p, 0o755); err != nil {
					return err
				}
				return os.Chmod(p, fs.FileMode(mode))
			case "chmod":
				mode, err := strconv.ParseUint(f[1], 8, 32)
				if err != nil {
					return err
				}
				return os.Chmod(filepath.Join(ctxDir, f[2]), fs.FileMode(mode))
			case "symlink":
				return os.Symlink(f[1], filepath.Join(ctxDir, f[2]))
			case "mtime":
				sec, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					return err
				}
				tm := time.Unix(sec, 0)
				return os.Chtimes(filepath.Join(ctxDir, f[2]), tm, tm)
			case "hardlink":
				return os.Link(filepath.Join(ctxDir, f[1]), filepath.Join(ctxDir, f[2]))
			case "git":
				return makeGitRepo(filepath.Join(caseDir, f[2]), filepath.Join(httpDir, f[1]))
			}
			return fmt.Errorf("unknown command %s", f[0])
		}()
		if err != nil {
			return fmt.Errorf("line %d (%s): %w", i+1, line, err)
		}
	}
	return nil
}

// writeArchive writes a deterministic tar of dir (entries sorted, owned by
// 0:0 unless the file's name says uid-N, fixed mtimes), compressed by the
// suffix of dest.
func writeArchive(dir, dest string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: genTime, Format: tar.FormatPAX}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
			return tw.WriteHeader(hdr)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, link, 0o777
			return tw.WriteHeader(hdr)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, int64(len(data))
		if info.Mode()&0o111 != 0 {
			hdr.Mode = 0o755
		}
		if strings.Contains(rel, "uid-1234") {
			hdr.Uid, hdr.Gid = 1234, 1234
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	raw := buf.Bytes()
	var out []byte
	switch {
	case strings.HasSuffix(dest, ".tar"):
		out = raw
	case strings.HasSuffix(dest, ".tar.gz"), strings.HasSuffix(dest, ".tgz"):
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.ModTime = genTime
		zw.Write(raw)
		if err := zw.Close(); err != nil {
			return err
		}
		out = z.Bytes()
	case strings.HasSuffix(dest, ".tar.zst"):
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			return err
		}
		out = enc.EncodeAll(raw, nil)
		enc.Close()
	case strings.HasSuffix(dest, ".tar.bz2"), strings.HasSuffix(dest, ".tar.xz"):
		tool, pkg := "bzip2", "bzip2"
		if strings.HasSuffix(dest, ".xz") {
			tool, pkg = "xz", "xz-utils"
		}
		cmd := exec.Command(tool, "-c")
		cmd.Stdin = bytes.NewReader(raw)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if out, err = cmd.Output(); err != nil {
			return fmt.Errorf("%s (from Debian's %s): %w: %s", tool, pkg, err, stderr.String())
		}
	default:
		return fmt.Errorf("%s: unknown archive suffix", dest)
	}
	return os.WriteFile(dest, out, 0o644)
}

// makeGitRepo commits dir into a new repository and serves it as a bare
// repository at dest (git's dumb HTTP protocol needs only files).
func makeGitRepo(dir, dest string) error {
	work, err := os.MkdirTemp("", "conformance-git-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := copyTree(dir, work); err != nil {
		return err
	}
	date := genTime.Format(time.RFC3339)
	run := func(dir string, args ...string) error {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date,
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	steps := [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "-A"},
		{"commit", "-q", "-m", "conformance fixture"},
		{"tag", "v1"},
		{"clone", "-q", "--bare", work, dest},
	}
	for _, s := range steps {
		if err := run(work, s...); err != nil {
			return err
		}
	}
	return run(dest, "update-server-info")
}

// TestConformanceBuildah builds every case with Debian's buildah (when
// -conformance.buildah is given) and logs where its image differs from
// expected.json: the way expected values were checked against a second
// implementation. It never fails for a difference.
func TestConformanceBuildah(t *testing.T) {
	if !*withBuildah {
		t.Skip("run with -conformance.buildah to compare the cases with buildah")
	}
	testutil.RequiresRoot(t)
	bin := testutil.RequireTool(t, "buildah", "buildah")
	env := confBases(t)
	storage := t.TempDir()
	for _, cname := range caseNames(t) {
		if *caseFilter != "" && !strings.Contains(cname, *caseFilter) {
			continue
		}
		t.Run(cname, func(t *testing.T) {
			c := env.prepare(t, cname)
			dfPath := filepath.Join(t.TempDir(), "Dockerfile")
			if err := os.WriteFile(dfPath, c.dockerfile, 0o644); err != nil {
				t.Fatal(err)
			}
			tag := env.tokens["{{REGISTRY}}"] + "/buildah/" + cname + ":1"
			args := []string{"--root", filepath.Join(storage, "root"), "--runroot", filepath.Join(storage, "run"),
				"--storage-driver", "vfs", "build", "--tls-verify=false", "--isolation", "chroot", "--format", "docker",
				"-f", dfPath, "-t", "localhost/" + cname}
			if c.opts.Target != "" {
				args = append(args, "--target", c.opts.Target)
			}
			for k, v := range c.opts.BuildArgs {
				args = append(args, "--build-arg", k+"="+v)
			}
			args = append(args, c.contextDir)
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil {
				if len(c.want.Error) > 0 {
					t.Logf("buildah fails too, as expected: %s", lastLines(out, 3))
				} else {
					t.Logf("DIFF buildah failed: %v\n%s", err, lastLines(out, 5))
				}
				return
			}
			if len(c.want.Error) > 0 {
				t.Logf("DIFF buildah builds it; we expect an error %q", c.want.Error)
				return
			}
			push := exec.Command(bin, "--root", filepath.Join(storage, "root"), "--runroot", filepath.Join(storage, "run"),
				"--storage-driver", "vfs", "push", "--tls-verify=false", "localhost/"+cname, "docker://"+tag)
			if out, err := push.CombinedOutput(); err != nil {
				t.Fatalf("buildah push: %v\n%s", err, out)
			}
			ref, err := name.ParseReference(tag)
			if err != nil {
				t.Fatal(err)
			}
			img, err := remote.Image(ref)
			if err != nil {
				t.Fatal(err)
			}
			got, err := env.observe(img)
			if err != nil {
				t.Fatal(err)
			}
			// buildah adds its own version label, and leaves the empty
			// mount points of its RUN sandbox in the image.
			delete(got.Config.Labels, "io.buildah.version")
			got.Files = slices.DeleteFunc(got.Files, func(f confFile) bool {
				switch f.Path {
				case "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/run":
					return deref(f.Size) == 0 && !slices.ContainsFunc(c.want.Files, func(w confFile) bool { return w.Path == f.Path })
				}
				return false
			})
			want := c.want
			want.History = nil
			if problems := compare(&want, got); len(problems) > 0 {
				t.Logf("DIFF buildah differs from expected.json:\n%s", strings.Join(problems, "\n"))
			} else {
				t.Logf("SAME buildah agrees with expected.json")
			}
		})
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
