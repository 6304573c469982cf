package build_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/output"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// baseWithLayer pushes the busybox image plus one layer (an uncompressed
// tar) to an in-process registry and returns its reference.
func baseWithLayer(t *testing.T, name string, layerTar []byte) string {
	return baseWithLayers(t, name, layerTar)
}

// baseWithLayers is baseWithLayer with several layers, in order.
func baseWithLayers(t *testing.T, name string, layerTars ...[]byte) string {
	t.Helper()
	testutil.RequiresRoot(t)
	img := testutil.BusyboxImage(t)
	for _, lt := range layerTars {
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(lt)), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			t.Fatal(err)
		}
	}
	ref := testutil.InProcessRegistry(t) + "/" + name + ":1"
	testutil.PushImage(t, img, ref)
	return ref
}

// buildOnly builds dockerfile ({{BASE}} is base) without reading the
// image back (builtFiles would read a sparse file's holes into memory).
func buildOnly(t *testing.T, st *build.State, base, ctxDir, dockerfile string) error {
	t.Helper()
	_, err := st.Build(t.Context(), build.Options{
		ContextDir: ctxDir, Dockerfile: []byte(strings.ReplaceAll(dockerfile, "{{BASE}}", base)),
		DockerfileName: "Dockerfile", Progress: newEvents(),
	})
	return err
}

// TestSparseLayer pulls a base image whose last layer holds a PAX sparse
// file of 512 MiB with 8 KiB of data: the file keeps its size and content
// and its holes stay holes (RUN sees a handful of blocks). A 20 GiB sparse
// entry in a few KiB of layer, the review's bomb, fails the build naming
// the layer instead of filling the disk. ADD of the same file as a local
// archive (smaller: the export reads its holes) keeps the holes too.
func TestSparseLayer(t *testing.T) {
	data := bytes.Repeat([]byte("s"), 8192)
	base := baseWithLayer(t, "sparse", testutil.SparseTar("var/log/lastlog", 512<<20, []testutil.Fragment{{Offset: 300 << 20, Data: data}}))
	// The same file as a local archive for ADD.
	ctxDir := writeContext(t, map[string]string{"sparse.tar": string(testutil.SparseTar("lastlog", 64<<20, []testutil.Fragment{{Offset: 40 << 20, Data: data}}))})
	// busybox stat: %s is the size, %b the 512-byte blocks allocated.
	df := `FROM {{BASE}}
RUN test "$(stat -c %s /var/log/lastlog)" = 536870912 && test "$(stat -c %b /var/log/lastlog)" -lt 2048 && \
    test "$(dd if=/var/log/lastlog bs=1048576 skip=300 count=1 2>/dev/null | head -c 4)" = ssss
ADD sparse.tar /s/
RUN test "$(stat -c %s /s/lastlog)" = 67108864 && test "$(stat -c %b /s/lastlog)" -lt 2048 && \
    test "$(dd if=/s/lastlog bs=1048576 skip=40 count=1 2>/dev/null | head -c 4)" = ssss
`
	st := openState(t, t.TempDir())
	if err := buildOnly(t, st, base, ctxDir, df); err != nil {
		t.Fatalf("build: %v", err)
	}

	bomb := baseWithLayer(t, "bomb", testutil.SparseTar("bomb", 20<<30, []testutil.Fragment{{Offset: 0, Data: data}}))
	err := buildOnly(t, st, bomb, ctxDir, "FROM {{BASE}}\nRUN true\n")
	if err == nil {
		t.Fatal("building on the 20 GiB sparse bomb succeeded")
	}
	t.Log(err)
	for _, want := range []string{"layer sha256:", "bomb"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestStepTimeout builds with Options.StepTimeout (--step-timeout): a RUN
// that sleeps past it fails, named with its Dockerfile line, and the
// build ends soon after the timeout; quicker steps are unaffected. An
// interrupted build names the step it stopped.
func TestStepTimeout(t *testing.T) {
	base := busyboxBase(t)
	ctxDir := writeContext(t, map[string]string{"x": "x"})
	st := openState(t, t.TempDir())
	df := "FROM " + base + "\nRUN true\nRUN sleep 60\n"
	start := time.Now()
	_, err := st.Build(t.Context(), build.Options{
		ContextDir: ctxDir, Dockerfile: []byte(df), DockerfileName: "Dockerfile",
		Progress: newEvents(), StepTimeout: 2 * time.Second,
	})
	if err == nil {
		t.Fatal("build succeeded")
	}
	t.Log(err)
	if want := "Dockerfile:3: RUN sleep 60: timed out after 2s"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the build took %v, want it ended soon after the 2s timeout", d)
	}

	// Interrupted (Ctrl-C) instead, the error names the running step.
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(2*time.Second, cancel)
	_, err = st.Build(ctx, build.Options{
		ContextDir: ctxDir, Dockerfile: []byte(df), DockerfileName: "Dockerfile", Progress: newEvents(),
	})
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "interrupted while running Dockerfile:3: RUN sleep 60") {
		t.Errorf("interrupted build = %v, want the running step named", err)
	}
}

// TestAddURLBounded builds ADD <url> against a server that accepts and
// never answers: with HTTPTimeout (--http-timeout) the build fails soon,
// naming the Dockerfile line, the URL and the stage. Interrupting such a
// build (Ctrl-C) names the step too. A download that works reports its
// bytes and rate under the step; one over HTTPMaxSize (--http-max-size)
// fails.
func TestAddURLBounded(t *testing.T) {
	base := busyboxBase(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	silent := "http://" + ln.Addr().String() + "/file.txt"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("d"), 100000))
	}))
	t.Cleanup(srv.Close)
	ctxDir := writeContext(t, map[string]string{"x": "x"})
	st := openState(t, t.TempDir())
	run := func(ctx context.Context, df string, ev *events) error {
		_, err := st.Build(ctx, build.Options{
			ContextDir: ctxDir, Dockerfile: []byte(df), DockerfileName: "Dockerfile",
			Progress: ev, HTTPTimeout: time.Second,
		})
		return err
	}

	start := time.Now()
	err = run(t.Context(), "FROM "+base+"\nADD "+silent+" /f\n", newEvents())
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:2: ADD "+silent+": waiting for the server: no answer for 1s") {
		t.Errorf("build = %v, want a timeout naming the line, URL and stage", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the build took %v with a 1s timeout", d)
	}

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(500*time.Millisecond, cancel)
	err = run(ctx, "FROM "+base+"\nADD "+silent+" /f\n", newEvents())
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:2: ADD "+silent+": waiting for the server: interrupted") {
		t.Errorf("interrupted build = %v, want the step named", err)
	}

	ev := newEvents()
	if err := run(t.Context(), "FROM "+base+"\nADD "+srv.URL+"/data /d\n", ev); err != nil {
		t.Fatal(err)
	}
	ev.mu.Lock()
	logs := ev.logs.String()
	ev.mu.Unlock()
	if !strings.Contains(logs, "downloaded 100kB in ") {
		t.Errorf("progress = %q, want a line with the bytes downloaded and the rate", logs)
	}

	// --http-max-size refuses a larger file.
	_, err = st.Build(t.Context(), build.Options{
		ContextDir: ctxDir, Dockerfile: []byte("FROM " + base + "\nADD " + srv.URL + "/big /d\n"), DockerfileName: "Dockerfile",
		Progress: newEvents(), HTTPMaxSize: 50000,
	})
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:2: ADD "+srv.URL+"/big: ") || !strings.Contains(err.Error(), "limit of 50kB (--http-max-size)") {
		t.Errorf("build of a download over --http-max-size = %v", err)
	}
}

// TestCopySkipsSockets builds COPY . of a context holding a Unix socket
// (git's fsmonitor--daemon.ipc, say): the socket is left out, as BuildKit
// leaves it out, and everything else is copied.
func TestCopySkipsSockets(t *testing.T) {
	base := busyboxBase(t)
	ctxDir := writeContext(t, map[string]string{"keep.txt": "kept", ".git/config": "cfg"})
	ln, err := net.Listen("unix", filepath.Join(ctxDir, ".git", "fsmonitor--daemon.ipc"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	st := openState(t, t.TempDir())
	df := "FROM {{BASE}}\nCOPY . /src/\nADD . /add/\n"
	got, _, err := addBuild(t, st, base, ctxDir, df)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	checkFiles(t, got, []wantFile{
		{path: "src/keep.txt", content: "kept", mode: 0o644},
		{path: "src/.git/config", content: "cfg", mode: 0o644},
		{path: "add/keep.txt", content: "kept", mode: 0o644},
	})
	for p := range got {
		if strings.HasSuffix(p, ".ipc") {
			t.Errorf("the image holds the socket %s", p)
		}
	}
	checkRebuildCached(t, st, base, ctxDir, df)
}

// TestCopyFromSymlinkedContext builds from a context directory reached
// through a symlink (as `builder build ./link` would): COPY of the whole
// context and of one file.
func TestCopyFromSymlinkedContext(t *testing.T) {
	base := busyboxBase(t)
	real := writeContext(t, map[string]string{"a.txt": "a", "d/b.txt": "b"})
	ctxDir := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, ctxDir); err != nil {
		t.Fatal(err)
	}
	st := openState(t, t.TempDir())
	got, _, err := addBuild(t, st, base, ctxDir, "FROM {{BASE}}\nCOPY . /app\nCOPY a.txt /\n")
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	checkFiles(t, got, []wantFile{
		{path: "app/a.txt", content: "a", mode: 0o644},
		{path: "app/d/b.txt", content: "b", mode: 0o644},
		{path: "a.txt", content: "a", mode: 0o644},
	})
}

// TestLayerKeepsImplicitParentModes pulls a base image whose last layer
// has tmp/x and opt/new/y but no tmp/ or opt/ entries: /tmp stays 1777,
// as it is in the layer below, and the new /opt/new is 0755.
func TestLayerKeepsImplicitParentModes(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "tmp/x", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
		{Name: "opt/new/y", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, "x")
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	base := baseWithLayer(t, "implicit", buf.Bytes())
	ctxDir := writeContext(t, map[string]string{"x": "x"})
	st := openState(t, t.TempDir())
	df := `FROM {{BASE}}
RUN test "$(stat -c %a /tmp)" = 1777 && test "$(stat -c %a /opt/new)" = 755 && test -f /tmp/x && test -f /opt/new/y
`
	if err := buildOnly(t, st, base, ctxDir, df); err != nil {
		t.Fatalf("build: %v", err)
	}
}

// TestAttestationFileOverImageSymlink: an image whose /provenance.json is
// a symlink to a host file must not make a local output with provenance
// write through it: the attestation replaces the link in dest.
func TestAttestationFileOverImageSymlink(t *testing.T) {
	base := busyboxBase(t)
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("host file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := openState(t, t.TempDir())
	localDir := filepath.Join(t.TempDir(), "out")
	local, err := output.Parse("type=local,dest=" + localDir)
	if err != nil {
		t.Fatal(err)
	}
	df := "FROM " + base + "\nRUN ln -s " + victim + " /provenance.json\n"
	ev, _, err := runBuildIndex(t, st, df, build.Options{Outputs: []output.Spec{local}, Provenance: build.Provenance{Mode: attest.ModeMin}})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "host file\n" {
		t.Fatalf("the host file behind the image's symlink changed: %q %v", b, err)
	}
	fi, err := os.Lstat(filepath.Join(localDir, "provenance.json"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("provenance.json in the output: %v %v, want a regular 0600 file", fi, err)
	}
}

// TestImplicitDirThroughSymlinkLayer pulls a base image whose one layer has
// a/bin/ 0777 owned by 1000 and whose next has a/bin/x (implying a/ and
// a/bin/) and then "a" as a symlink to a host directory: the host's bin
// keeps its mode, owner and time (the pull used to chmod it 0777 and chown
// it to 1000, as it would the host's /usr/bin with a -> /usr).
func TestImplicitDirThroughSymlinkLayer(t *testing.T) {
	outside := t.TempDir()
	bin := filepath.Join(outside, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(bin, mtime, mtime)
	layer := func(hs ...*tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hs {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	base := baseWithLayers(t, "implicitlink",
		layer(&tar.Header{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755},
			&tar.Header{Name: "a/bin/", Typeflag: tar.TypeDir, Mode: 0o777, Uid: 1000, Gid: 1000}),
		layer(&tar.Header{Name: "a/bin/x", Typeflag: tar.TypeReg, Mode: 0o644},
			&tar.Header{Name: "a", Typeflag: tar.TypeSymlink, Linkname: outside}))
	st := openState(t, t.TempDir())
	if err := buildOnly(t, st, base, writeContext(t, map[string]string{"x": "x"}), "FROM {{BASE}}\nRUN true\n"); err != nil {
		t.Fatalf("build: %v", err)
	}
	fi, err := os.Lstat(bin)
	if err != nil {
		t.Fatal(err)
	}
	stt := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o755 || stt.Uid != 0 || stt.Gid != 0 || !fi.ModTime().Equal(mtime) {
		t.Errorf("host dir behind the layer's symlink = %v %d:%d mtime %v; want drwxr-xr-x 0:0 %v", fi.Mode(), stt.Uid, stt.Gid, fi.ModTime(), mtime)
	}
}
