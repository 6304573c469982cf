package remote

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache/remote/mountcache"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const testMountKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// mountSolve is a Solve of no records and the given cache mounts.
type mountSolve []CacheMount

func (mountSolve) Records(context.Context, bool) (map[digest.Digest]string, error) {
	return map[digest.Digest]string{}, nil
}
func (s mountSolve) CacheMounts(context.Context) ([]CacheMount, error) { return s, nil }

// writeTree makes dir hold files (name -> content; "->x" is a symlink
// to x), each with a fixed mtime.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	when := time.Unix(1700000000, 0)
	for name, c := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(c, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(c), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, when, when)
	}
}

// readTree returns every path under dir with its type, mode, mtime and
// content (or link target).
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		fi, _ := d.Info()
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			desc += " " + fi.ModTime().UTC().String() + " " + digest.FromBytes(b).String()
		}
		out[rel] = desc
		return nil
	})
	return out
}

func randomString(t *testing.T, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return string(b)
}

// exportToLayout exports the cache mount in dir to the layout directory
// layout and returns the config written.
func exportToLayout(t *testing.T, l *Local, dir, layout string) *config {
	t.Helper()
	spec := Spec{Type: TypeLocal, Dir: layout, CacheMounts: true}
	cfg := &config{Version: 1, Layers: []layer{}, Records: []record{}}
	blobs, err := l.exportMounts(t.Context(), spec, mountSolve{{Key: testMountKey, ID: "/cache", Dir: dir}}, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := l.writeManifest(t.Context(), cfg, blobs)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.writeLayout(layout, desc, blobs); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// importFrom imports the layout directory as a fresh state directory does
// and returns its cache mount restorer.
func importFrom(t *testing.T, layout string, warn func(string)) MountRestorer {
	t.Helper()
	l := &Local{Content: newStore(t), Warn: warn}
	c, err := l.Import(t.Context(), []Spec{{Type: TypeLocal, Dir: layout}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := c.(MountRestorer)
	if !ok {
		t.Fatal("the import of a cache with cache mounts is no MountRestorer")
	}
	return r
}

func blobFiles(t *testing.T, layout string) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(layout, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range entries {
		out[e.Name()] = true
	}
	return out
}

// TestCacheMountRoundTrip exports a cache mount bigger than one part,
// restores it in another state directory with the same files, modes,
// times and links, and exports it again after one file changed: only
// the part holding that file is a new blob.
func TestCacheMountRoundTrip(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"count": "1", "a/big": randomString(t, 3<<20), "b/big": randomString(t, 3<<20),
		"b/deep/x": "x", "c/small": "small", "link": "->a/big", "empty/.keep": "",
	})
	os.Chmod(filepath.Join(src, "a"), 0o700)
	l := &Local{Content: newStore(t)}
	layout := filepath.Join(t.TempDir(), "cache")
	cfg := exportToLayout(t, l, src, layout)
	if len(cfg.CacheMounts) != 1 || len(cfg.CacheMounts[0].Parts) < 4 {
		t.Fatalf("config cache mounts %+v: want one mount cut into a root part and a part per directory", cfg.CacheMounts)
	}
	before := blobFiles(t, layout)

	r := importFrom(t, layout, func(w string) { t.Error("warning:", w) })
	dst := filepath.Join(t.TempDir(), "0")
	if ok, err := r.RestoreCacheMount(t.Context(), testMountKey, dst); !ok || err != nil {
		t.Fatalf("restore = %v, %v", ok, err)
	}
	want, got := readTree(t, src), readTree(t, dst)
	for p, w := range want {
		if got[p] != w {
			t.Errorf("restored %s: %q, want %q", p, got[p], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("restored %d paths, want %d", len(got), len(want))
	}
	// The other machine exports the restored cache as the same blobs.
	again := exportToLayout(t, &Local{Content: newStore(t)}, dst, filepath.Join(t.TempDir(), "again"))
	for i, p := range again.CacheMounts[0].Parts {
		if w := cfg.CacheMounts[0].Parts[i]; p.Blob.Digest != w.Blob.Digest {
			t.Errorf("part %s exported again from the restored cache: %s, want %s", p.Path, p.Blob.Digest, w.Blob.Digest)
		}
	}
	if ok, _ := r.RestoreCacheMount(t.Context(), "ff"+testMountKey[2:], filepath.Join(t.TempDir(), "0")); ok {
		t.Error("restored a cache mount the cache does not hold")
	}

	// One file of b changes: one new part blob, plus the config and manifest.
	os.WriteFile(filepath.Join(src, "b", "deep", "x"), []byte("changed"), 0o640)
	exportToLayout(t, l, src, layout)
	var added []string
	for b := range blobFiles(t, layout) {
		if !before[b] {
			added = append(added, b)
		}
	}
	if len(added) != 3 {
		t.Errorf("the re-export added %d blobs, want 3 (the changed part, config, manifest)", len(added))
	}
}

// TestCacheMountNoClobber: a local cache with files is kept as it is; an
// empty one is filled.
func TestCacheMountNoClobber(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"count": "7"})
	layout := filepath.Join(t.TempDir(), "cache")
	exportToLayout(t, &Local{Content: newStore(t)}, src, layout)
	r := importFrom(t, layout, func(w string) { t.Error("warning:", w) })

	local := t.TempDir()
	writeTree(t, local, map[string]string{"count": "9"})
	if ok, err := r.RestoreCacheMount(t.Context(), testMountKey, local); ok || err != nil {
		t.Errorf("restore over a local cache with files = %v, %v; want false", ok, err)
	}
	if b, _ := os.ReadFile(filepath.Join(local, "count")); string(b) != "9" {
		t.Errorf("the local cache's count is %q, want 9", b)
	}
	empty := t.TempDir()
	if ok, err := r.RestoreCacheMount(t.Context(), testMountKey, empty); !ok || err != nil {
		t.Errorf("restore into an empty cache = %v, %v", ok, err)
	}
	if b, _ := os.ReadFile(filepath.Join(empty, "count")); string(b) != "7" {
		t.Errorf("the emptied cache's count is %q, want 7", b)
	}
}

// TestCacheMountMaxSize: a cache mount over cache-mounts-max-size is left
// out with a warning naming it.
func TestCacheMountMaxSize(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"big": randomString(t, 5000)})
	var warnings []string
	l := &Local{Content: newStore(t), Warn: func(w string) { warnings = append(warnings, w) }}
	spec, err := ParseSpec("type=local,dest=x,cache-mounts=true,cache-mounts-max-size=4k", true)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config{Version: 1}
	blobs, err := l.exportMounts(t.Context(), spec, mountSolve{{Key: testMountKey, ID: "/go/cache", Dir: src}}, cfg, nil)
	if err != nil || len(blobs) != 0 || len(cfg.CacheMounts) != 0 {
		t.Fatalf("export of a mount over the limit: %v, %d blobs, %d mounts", err, len(blobs), len(cfg.CacheMounts))
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "/go/cache") || !strings.Contains(warnings[0], "cache-mounts-max-size") {
		t.Errorf("warnings %q, want one naming the mount and the limit", warnings)
	}
}

// hostileLayout writes a layout whose cache mount's one part is the tar
// of entries, declared with size declared (the tar's own when < 0).
func hostileLayout(t *testing.T, entries []tar.Header, declared int64) string {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, h := range entries {
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
	}
	tw.Close()
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(tb.Bytes())
	zw.Close()
	if declared < 0 {
		declared = int64(tb.Len())
	}
	blob := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(zb.Bytes()), Size: int64(zb.Len())}
	cfg := &config{Version: 1, Layers: []layer{}, Records: []record{}, CacheMounts: []mountcache.Entry{{
		Key: testMountKey, ID: "/cache", Size: declared,
		Parts: []mountcache.Part{{Path: ".", Tree: true, Blob: blob, DiffID: digest.FromBytes(tb.Bytes()), Size: declared}},
	}}}
	l := &Local{Content: newStore(t)}
	if _, err := l.Content.WriteBytes(t.Context(), zb.Bytes()); err != nil {
		t.Fatal(err)
	}
	desc, err := l.writeManifest(t.Context(), cfg, []ocispec.Descriptor{blob})
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(t.TempDir(), "cache")
	if err := l.writeLayout(layout, desc, []ocispec.Descriptor{blob}); err != nil {
		t.Fatal(err)
	}
	return layout
}

// TestCacheMountHostile: a part that climbs out of the cache with .., or
// holds more than it declares, is refused with a warning, and the cache
// stays absent; a file written through a symlink that points out is
// confined to the cache. Nothing is written outside.
func TestCacheMountHostile(t *testing.T) {
	tests := []struct {
		name     string
		entries  []tar.Header
		declared int64
		confined string // the file written inside, when not refused
	}{
		{"dotdot", []tar.Header{{Name: "../../escape", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}}, -1, ""},
		{"symlink", []tar.Header{
			{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "../.."},
			{Name: "up/escape", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
			{Name: "suid", Typeflag: tar.TypeReg, Mode: 0o6755, Size: 1},
		}, -1, "escape"},
		{"undeclared", []tar.Header{{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 100000}}, 2048, ""},
		{"device", []tar.Header{{Name: "disk", Typeflag: tar.TypeBlock, Mode: 0o666, Devmajor: 8}}, -1, ""},
		{"hardlink", []tar.Header{{Name: "shadow", Typeflag: tar.TypeLink, Linkname: "../../../etc/shadow"}}, -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layout := hostileLayout(t, tt.entries, tt.declared)
			var warnings []string
			r := importFrom(t, layout, func(w string) { warnings = append(warnings, w) })
			base := filepath.Join(t.TempDir(), "mounts", "key")
			os.MkdirAll(base, 0o755)
			dst := filepath.Join(base, "0")
			ok, err := r.RestoreCacheMount(t.Context(), testMountKey, dst)
			outside := []string{filepath.Join(base, "escape"), filepath.Join(filepath.Dir(base), "escape")}
			if tt.confined != "" {
				if !ok || err != nil {
					t.Fatalf("restore = %v, %v", ok, err)
				}
				if _, err := os.Lstat(filepath.Join(dst, tt.confined)); err != nil {
					t.Errorf("the confined file: %v", err)
				}
				if fi, err := os.Stat(filepath.Join(dst, "suid")); err != nil || fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
					t.Errorf("the setuid file: %v, %v", fi.Mode(), err)
				}
			} else {
				if ok || err != nil || len(warnings) != 1 {
					t.Fatalf("restore = %v, %v, warnings %q: want refused with a warning", ok, err, warnings)
				}
				t.Log(warnings[0])
				outside = append(outside, dst)
			}
			for _, p := range outside {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s exists after the refused restore", p)
				}
			}
			if left, _ := filepath.Glob(filepath.Join(base, ".restore-*")); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// TestCacheMountsIgnoredByOldReaders: a config with cache mounts is still
// a version 1 config whose records an importer that knows nothing of
// cache mounts reads as before.
func TestCacheMountsIgnoredByOldReaders(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"count": "1"})
	layout := filepath.Join(t.TempDir(), "cache")
	l := &Local{Content: newStore(t)}
	cfg := exportToLayout(t, l, src, layout)
	cfg.Records = append(cfg.Records, record{Key: "sha256:aa", Layer: -1})
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The config as this package read it before cache mounts existed.
	var old struct {
		Version int               `json:"version"`
		Layers  []json.RawMessage `json:"layers"`
		Records []record          `json:"records"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&old); err != nil || old.Version != 1 || len(old.Records) != 1 {
		t.Errorf("old reader: %v, %+v", err, old)
	}
	if !strings.Contains(string(raw), `"cacheMounts"`) {
		t.Error("the config has no cacheMounts")
	}
	// Without cache mounts, the config is byte for byte what it was.
	plain, _ := json.Marshal(&config{Version: 1, Layers: []layer{}, Records: []record{}})
	if string(plain) != `{"version":1,"layers":[],"records":[]}` {
		t.Errorf("a config without cache mounts is %s", plain)
	}
}
