package build_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/internal/archive"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/output"
	"golang.org/x/sys/unix"
)

// capNetRaw is what `setcap cap_net_raw+ep` writes: a version 2 file
// capability. capRootid1000 is the same capability as a version 3 one,
// whose root user is uid 1000 (what setcap in a user namespace whose root
// is host uid 1000 writes, seen from the host).
const (
	capNetRaw     = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	capRootid1000 = "\x01\x00\x00\x03\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xe8\x03\x00\x00"
)

// xattrEntry is a layer entry with PAX xattr records.
type xattrEntry struct {
	name   string
	typ    byte
	data   string
	xattrs map[string]string
}

// xattrLayer is an uncompressed layer of entries (0755, owned by root).
func xattrLayer(t *testing.T, entries ...xattrEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o755, Size: int64(len(e.data)),
			ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		for k, v := range e.xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords[archive.PAXXattr+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layerXattrs reads an image's layers and returns, by path, the xattrs
// their entries record (the last layer's entry wins).
func layerXattrs(t *testing.T, st *build.State, res *build.Result) map[string]map[string]string {
	t.Helper()
	img, err := exporter.V1Image(st.Content, res.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for p, f := range imageFiles(t, layers) {
		m := map[string]string{}
		for k, v := range f.hdr.PAXRecords {
			if n, ok := strings.CutPrefix(k, archive.PAXXattr); ok {
				m[n] = v
			}
		}
		out[strings.TrimSuffix(p, "/")] = m
	}
	return out
}

// TestCopyKeepsXattrs builds a real Dockerfile: COPY --from a stage whose
// base image layer gives a file a capability (as setcap does) and user.*
// xattrs, and a directory a user.* xattr. As in BuildKit, the copy keeps
// them, with --chown too (which clears a capability set before it), for
// the steps after it; the image's layer records only the capability, as
// PAX SCHILY.xattr.security.capability, as BuildKit's do (conformance case
// run_xattrs), and the -o type=local output, written from the layers, has
// the same (BuildKit's, written from its snapshot, has the user.* ones and
// not the capability: see solver/ops/filecopy/xattr.go). A context
// file's xattrs are not copied (BuildKit drops them from its images).
// Rootless, the capability goes through the user namespace (stored for its
// root, read back as version 2) and comes out the same. Both snapshotters:
// overlay, whose upper directory is the layer, and copy, whose layers
// snapshot/treecopy makes by comparing trees.
func TestCopyKeepsXattrs(t *testing.T) {
	for _, mode := range []string{"overlay", "copy"} {
		t.Run(mode, func(t *testing.T) {
			t.Setenv(build.SnapshotterEnv, mode)
			testCopyKeepsXattrs(t)
		})
	}
}

func testCopyKeepsXattrs(t *testing.T) {
	base := baseWithLayer(t, "xattrs", xattrLayer(t,
		xattrEntry{name: "xa/", typ: tar.TypeDir, xattrs: map[string]string{"user.dirattr": "d"}},
		xattrEntry{name: "xa/capbin", typ: tar.TypeReg, data: "cap", xattrs: map[string]string{
			"security.capability": capNetRaw, "user.foo": "bar"}},
		xattrEntry{name: "xa/dir/", typ: tar.TypeDir, xattrs: map[string]string{"user.dirattr": "d"}},
		xattrEntry{name: "xa/dir/f", typ: tar.TypeReg, data: "f", xattrs: map[string]string{"user.f": "1"}},
	))
	ctxDir := writeContext(t, map[string]string{"ctxfile": "c"})
	if err := unix.Setxattr(filepath.Join(ctxDir, "ctxfile"), "user.ctx", []byte("c"), 0); err != nil {
		t.Skipf("the context's file system has no user xattrs: %v", err)
	}
	localDir := filepath.Join(t.TempDir(), "rootfs")
	local, err := output.Parse("type=local,dest=" + localDir)
	if err != nil {
		t.Fatal(err)
	}
	df := `FROM {{BASE}} AS src
FROM scratch
COPY --from=src /xa /xa
COPY --chown=1000:1000 --from=src /xa/capbin /chowned
COPY ctxfile /ctx/
`
	st := openState(t, t.TempDir())
	_, ev, res, err := runBuild(t, st, base, ctxDir, df, build.Options{Outputs: []output.Spec{local}})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	capbin := map[string]string{"security.capability": capNetRaw, "user.foo": "bar"}
	want := map[string]map[string]string{
		"xa/capbin": capbin,
		"chowned":   capbin,
		"xa/dir":    {"user.dirattr": "d"},
		"xa/dir/f":  {"user.f": "1"},
		// A new destination directory is made, not copied.
		"xa":          {},
		"ctx/ctxfile": {},
	}
	layers := layerXattrs(t, st, res)
	for p, w := range want {
		wl := map[string]string{}
		if c, ok := w["security.capability"]; ok {
			wl["security.capability"] = c
		}
		if got := layers[p]; !maps.Equal(got, wl) {
			t.Errorf("layer entry %s has xattrs %q, want %q", p, got, wl)
		}
		if got := testutil.Xattrs(t, filepath.Join(localDir, p)); !maps.Equal(got, wl) {
			t.Errorf("type=local output %s has xattrs %q, want %q", p, got, wl)
		}
	}
}

// TestCopyCapabilityRootid copies a version 3 capability whose root user
// is uid 1000. As root it is kept byte for byte, as BuildKit keeps it, and
// so it is rootless with the user's subordinate ids, where the namespace
// maps uid 1000 (BuildKit v0.34.2 rootless, under rootlesskit, fails to
// unpack this image: "failed to setxattr ... security.capability: invalid
// argument"). With only the user's own id mapped (no /etc/subuid range)
// the kernel cannot store that root user, and the build fails saying so.
func TestCopyCapabilityRootid(t *testing.T) {
	base := baseWithLayer(t, "xattrs-v3", xattrLayer(t,
		xattrEntry{name: "v3cap", typ: tar.TypeReg, data: "v3", xattrs: map[string]string{"security.capability": capRootid1000}}))
	st := openState(t, t.TempDir())
	_, ev, res, err := runBuild(t, st, base, writeContext(t, nil), "FROM {{BASE}} AS src\nFROM scratch\nCOPY --from=src /v3cap /v3cap\n", build.Options{})
	if !uidMapped(t, 1000) {
		if err == nil || !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "security.capability") || !strings.Contains(err.Error(), "rootid") {
			t.Fatalf("rootless build (uid 1000 not mapped) of a rootid 1000 capability: %v; want an EINVAL error naming security.capability and its rootid", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	if got := layerXattrs(t, st, res)["v3cap"]; got["security.capability"] != capRootid1000 {
		t.Errorf("layer entry v3cap has xattrs %q, want security.capability %q", got, capRootid1000)
	}
}

// uidMapped reports whether this process's user namespace maps uid.
func uidMapped(t *testing.T, uid uint64) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var inside, outside, n uint64
		if _, err := fmt.Sscan(l, &inside, &outside, &n); err == nil && uid >= inside && uid-inside < n {
			return true
		}
	}
	return false
}

// TestCopyFromStageXattrsInKey rebuilds a COPY --from whose source stage
// changed only in a file's xattrs (a base image with the same file and
// another capability): the copy must run again, not be taken from the
// cache by the files' checksums, which would leave the old capability.
func TestCopyFromStageXattrsInKey(t *testing.T) {
	layer := func(v string) []byte {
		return xattrLayer(t, xattrEntry{name: "f", typ: tar.TypeReg, data: "same",
			xattrs: map[string]string{"security.capability": v, "user.v": v[:6]}})
	}
	other := capNetRaw[:5] + "\x30" + capNetRaw[6:] // cap_net_raw and cap_net_admin
	bases := []string{baseWithLayer(t, "xattrs-a", layer(capNetRaw)), baseWithLayer(t, "xattrs-b", layer(other))}
	df := "ARG B\nFROM $B AS src\nFROM scratch\nCOPY --from=src /f /f\n"
	st := openState(t, t.TempDir())
	ctxDir := writeContext(t, nil)
	for i, b := range bases {
		_, ev, res, err := runBuild(t, st, "", ctxDir, df, build.Options{BuildArgs: map[string]string{"B": b}})
		if err != nil {
			t.Fatalf("build %d: %v\n%s", i, err, ev.logs.String())
		}
		want := []string{capNetRaw, other}[i]
		if got := layerXattrs(t, st, res)["f"]["security.capability"]; got != want {
			t.Errorf("build %d: /f has capability %q, want %q (ran: %v)", i, got, want, ev.ran())
		}
	}
}
