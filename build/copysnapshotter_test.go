package build_test

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/internal/testutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// copyModeDockerfile changes the base in every way a layer can: new,
// changed and deleted files and directories, a directory deleted and made
// again (opaque), a file turned into a directory, metadata-only changes, and
// files from another stage.
const copyModeDockerfile = `FROM {{BASE}} AS stage1
ARG SOURCE_DATE_EPOCH
RUN mkdir -p /made/sub /made/gone && echo one > /made/sub/f && echo two > /made/g && ln -s g /made/link && ln /made/g /made/hard && touch /made/gone/x
COPY ctx.txt /made/ctx.txt
RUN rm -rf /made/gone /made/sub && mkdir /made/sub && echo again > /made/sub/f2 && chmod 0700 /made

FROM {{BASE}}
ARG SOURCE_DATE_EPOCH
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && rm /etc/group && rm /bin/ls && \
    mkdir -p /var/lib/new && echo n > /var/lib/new/n && chmod 0750 /root && mkfifo /tmp/fifo
RUN rm /tmp/fifo && rm -rf /var && mkdir /var && echo v > /var/v && rm /bin/vi && mkdir /bin/vi && touch /bin/vi/dir-now
COPY --from=stage1 /made /opt/made
COPY ctx.txt /etc/ctx.txt
RUN --mount=type=bind,from=stage1,source=/made,target=/m,rw echo x > /m/new && cat /m/g /m/sub/f2 > /from-stage && echo done > /done
`

// copyModeBuild builds copyModeDockerfile in a fresh state dir with
// BUILDER_SNAPSHOTTER=mode and returns the image, the warnings Open gave and
// how long the build took.
func copyModeBuild(t *testing.T, base, mode string) (v1.Image, []string, time.Duration) {
	t.Helper()
	t.Setenv(build.SnapshotterEnv, mode)
	var mu sync.Mutex
	var warnings []string
	st, err := build.Open(t.TempDir(), build.StateOptions{Warn: func(w string) {
		mu.Lock()
		defer mu.Unlock()
		warnings = append(warnings, w)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if got := st.Snapshots.CopyMode(); got != (mode == "copy") {
		t.Fatalf("%s=%s: CopyMode() = %v", build.SnapshotterEnv, mode, got)
	}
	ctxDir := writeContext(t, map[string]string{"ctx.txt": "from the context\n"})
	mtime := time.Unix(1600000000, 0)
	for _, p := range []string{"ctx.txt", "."} {
		if err := os.Chtimes(filepath.Join(ctxDir, p), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	ev := newEvents()
	start := time.Now()
	res, err := st.Build(t.Context(), build.Options{
		ContextDir: ctxDir, Dockerfile: []byte(strings.ReplaceAll(copyModeDockerfile, "{{BASE}}", base)),
		DockerfileName: "Dockerfile", Progress: ev, BuildArgs: map[string]string{"SOURCE_DATE_EPOCH": "1700000000"},
	})
	if err != nil {
		t.Fatalf("%s build: %v\n%s", mode, err, ev.logs.String())
	}
	took := time.Since(start)
	img, err := exporter.V1Image(st.Content, res.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("%s: validate.Image: %v", mode, err)
	}
	return img, warnings, took
}

// layerEntries lists each layer's entries as "name type mode uid:gid
// size linkname".
func layerEntries(t *testing.T, img v1.Image) [][]string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, fmt.Sprintf("%s %c %#o %d:%d %d %s", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size, h.Linkname))
		}
		rc.Close()
		out = append(out, names)
	}
	return out
}

// TestCopySnapshotter builds the same Dockerfile with the overlay and the
// copy-based snapshotter: the images must have the same layers (the same
// diff_ids with SOURCE_DATE_EPOCH, so the same files), and the copy mode
// must be reported.
func TestCopySnapshotter(t *testing.T) {
	base := busyboxBase(t)
	oImg, oWarn, oTook := copyModeBuild(t, base, "overlay")
	cImg, cWarn, cTook := copyModeBuild(t, base, "copy")
	t.Logf("build took %v with overlay, %v with copies", oTook, cTook)
	for _, w := range oWarn {
		if strings.Contains(w, "copy-based") {
			t.Errorf("overlay build warned %q", w)
		}
	}
	if !slices.ContainsFunc(cWarn, func(w string) bool { return strings.Contains(w, "copy-based snapshotter") }) {
		t.Errorf("copy build warnings %q, want the copy mode reported", cWarn)
	}

	oEntries, cEntries := layerEntries(t, oImg), layerEntries(t, cImg)
	if len(oEntries) != len(cEntries) {
		t.Fatalf("overlay image has %d layers, copy image %d", len(oEntries), len(cEntries))
	}
	for i := range oEntries {
		if !slices.Equal(oEntries[i], cEntries[i]) {
			t.Errorf("layer %d:\noverlay %q\ncopy    %q", i, oEntries[i], cEntries[i])
		}
	}
	oCfg, err := oImg.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cCfg, err := cImg.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(oCfg.RootFS.DiffIDs, cCfg.RootFS.DiffIDs) {
		t.Errorf("diff_ids differ:\noverlay %v\ncopy    %v", oCfg.RootFS.DiffIDs, cCfg.RootFS.DiffIDs)
	}
	if f := imageFiles(t, mustLayers(t, cImg))["from-stage"]; f.content != "two\nagain\n" {
		t.Errorf("/from-stage = %q, want what the bind mount of stage1 held", f.content)
	}
	// The layers hold what the Dockerfile did.
	want := map[int][]string{
		1: {"bin/", "bin/.wh.ls", "etc/.wh.group", "root/", "tmp/", "tmp/fifo", "var/", "var/lib/", "var/lib/new/", "var/lib/new/n"},
		2: {"bin/", "bin/vi/", "bin/vi/.wh..wh..opq", "bin/vi/dir-now", "tmp/", "tmp/.wh.fifo", "var/", "var/.wh..wh..opq", "var/v"},
	}
	for i, names := range want {
		var got []string
		for _, e := range cEntries[i] {
			n, _, _ := strings.Cut(e, " ")
			if n != "etc/" && n != "etc/passwd" {
				got = append(got, n)
			}
		}
		if !slices.Equal(got, names) {
			t.Errorf("copy mode layer %d = %q, want %q", i, got, names)
		}
	}
}

func mustLayers(t *testing.T, img v1.Image) []v1.Layer {
	t.Helper()
	l, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSnapshotterChoice checks the automatic choice: overlay where the
// probe passes (this machine), the copy mode with a warning where it fails
// (a cached failing probe stands in for an old kernel), and the cache is
// used, not the probe again.
func TestSnapshotterChoice(t *testing.T) {
	testutil.RequiresRoot(t) // overlay mounts
	t.Setenv(build.SnapshotterEnv, "")
	root := t.TempDir()
	open := func() (*build.State, []string) {
		var warnings []string
		st, err := build.Open(root, build.StateOptions{Warn: func(w string) { warnings = append(warnings, w) }})
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		return st, warnings
	}
	st, warnings := open()
	if st.Snapshots.CopyMode() || len(warnings) != 0 {
		t.Fatalf("first Open: CopyMode() = %v, warnings %q; want overlay, silently", st.Snapshots.CopyMode(), warnings)
	}
	cache := filepath.Join(root, "overlay-probe.json")
	b, err := os.ReadFile(cache)
	if err != nil {
		t.Fatalf("probe result not cached: %v", err)
	}
	// The same kernel with a failed probe on record.
	failed := strings.Replace(string(b), `"userXattr"`, `"error":"invalid argument","userXattr"`, 1)
	if err := os.WriteFile(cache, []byte(failed), 0o600); err != nil {
		t.Fatal(err)
	}
	st, warnings = open()
	if !st.Snapshots.CopyMode() {
		t.Errorf("Open with a failed probe: CopyMode() = false")
	}
	want := "overlayfs is not usable on " + filepath.Join(root, "snapshots") + " (invalid argument); using the slower copy-based snapshotter"
	if !slices.Equal(warnings, []string{want}) {
		t.Errorf("warnings = %q, want %q", warnings, want)
	}
	// Another kernel: probed again.
	if err := os.WriteFile(cache, []byte(strings.Replace(failed, `"kernel":"`, `"kernel":"other-`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, warnings = open(); st.Snapshots.CopyMode() || len(warnings) != 0 {
		t.Errorf("Open after a kernel change: CopyMode() = %v, warnings %q; want overlay", st.Snapshots.CopyMode(), warnings)
	}
	t.Setenv(build.SnapshotterEnv, "bogus")
	if _, err := build.Open(root, build.StateOptions{}); err == nil {
		t.Errorf("Open with %s=bogus = nil, want an error", build.SnapshotterEnv)
	}
}
