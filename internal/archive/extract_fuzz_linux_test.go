//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// outsideState describes everything under parent but root: path, type,
// mode, link count, size, content or link target. A change means Extract
// wrote (or linked) outside its directory.
func outsideState(t *testing.T, parent, root string) []string {
	return describe(t, parent, root, true)
}

// tarWithinBounds reports whether every entry of the tar declares at most
// max bytes, so that the fuzzer cannot fill the disk through a sparse or
// huge entry (bounding those is Apply's own job, tested elsewhere).
func tarWithinBounds(b []byte, max int64) bool {
	tr := tar.NewReader(bytes.NewReader(b))
	var total int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return true // Apply stops at the same error
		}
		total += hdr.Size
		if hdr.Size > max || total > max {
			return false
		}
	}
}

// FuzzExtract extracts arbitrary tar bytes into a fresh directory, once as
// a layer (whiteouts on, the layer root's metadata applied) and once as ADD
// does (a fixed owner, the destination kept, an exclude), and checks that
// nothing beside it changed: a sentinel file and directory next to the
// destination (targets of ../ escapes), their contents, modes and link
// counts (a hard link to them from inside would be an escape too). Seeds
// are in testdata/fuzz/FuzzExtract (found as FuzzApply, when it fuzzed the
// layer applier alone).
func FuzzExtract(f *testing.F) {
	f.Add(tarBytes(
		entry{name: "a/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "a/f", typ: tar.TypeReg, mode: 0o644, data: "x"},
		entry{name: "a/.wh.g", typ: tar.TypeReg},
		entry{name: "a/.wh..wh..opq", typ: tar.TypeReg},
	))
	f.Add(tarBytes(
		entry{name: "l", typ: tar.TypeSymlink, link: "../sub"},
		entry{name: "l/f", typ: tar.TypeReg, mode: 0o644, data: "escaped"},
		entry{name: "h", typ: tar.TypeLink, link: "../f"},
		entry{name: "../../sentinel", typ: tar.TypeReg, data: "overwritten"},
	))
	f.Add(tarBytes(
		entry{name: "up", typ: tar.TypeSymlink, link: ".."},
		entry{name: "up/sentinel", typ: tar.TypeReg, data: "overwritten"},
		entry{name: "abs", typ: tar.TypeSymlink, link: "/"},
		entry{name: "abs/x", typ: tar.TypeLink, link: "abs/../../f"},
		entry{name: "dev", typ: tar.TypeChar, major: 1, minor: 3},
		entry{name: "x", typ: tar.TypeReg, xattrs: map[string]string{"user.a": "b", "trusted.overlay.opaque": "y"}},
	))
	f.Fuzz(func(t *testing.T, layer []byte) {
		if !tarWithinBounds(layer, 1<<20) {
			return
		}
		parent := t.TempDir()
		if err := os.WriteFile(filepath.Join(parent, "sentinel"), []byte("sentinel"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(parent, "sentinel-dir", "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(parent, "sentinel-dir", "f"), []byte("f"), 0o600); err != nil {
			t.Fatal(err)
		}
		// Two levels down, so that ../../ escapes land in the watched tree.
		root := filepath.Join(parent, "sentinel-dir", "layer")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		before := outsideState(t, parent, root)
		noChown := os.Geteuid() != 0
		configs := []Options{
			{Whiteouts: true, NoLchown: noChown},
			{Owner: &Owner{UID: 1, GID: 2}, NoLchown: noChown, KeepDestination: true, Exclude: func(rel string) bool { return rel == "x" }},
		}
		for i, opts := range configs {
			Extract(t.Context(), root, tar.NewReader(bytes.NewReader(layer)), opts)
			if after := outsideState(t, parent, root); !reflect.DeepEqual(before, after) {
				t.Fatalf("Extract(options %d) changed files outside %s:\nbefore: %q\nafter:  %q", i, root, before, after)
			}
		}
		// Leave the tree removable by t.TempDir's cleanup.
		filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}
