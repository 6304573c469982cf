//go:build linux

package snapshot

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"syscall"
	"testing"
)

// outsideState describes everything under parent but root: path, type,
// mode, link count, size, content or link target. A change means Apply
// wrote (or linked) outside its directory.
func outsideState(t *testing.T, parent, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(parent, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return filepath.SkipDir
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v nlink=%d size=%d", p, fi.Mode(), st.Nlink, fi.Size())
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " =" + string(b)
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " ->" + target
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
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

func fuzzTar(entries ...tarEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(e.header()); err != nil {
			panic(err)
		}
		if _, err := tw.Write([]byte(e.Content)); err != nil {
			panic(err)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// FuzzApply applies arbitrary tar bytes into a fresh directory and checks
// that nothing beside it changed: a sentinel file and directory next to
// the layer directory (targets of ../ escapes), their contents, modes and
// link counts (a hard link to them from inside would be an escape too).
// Seeds are in testdata/fuzz/FuzzApply.
func FuzzApply(f *testing.F) {
	f.Add(fuzzTar(
		tarEntry{Name: "a/", Type: tar.TypeDir, Mode: 0o755},
		tarEntry{Name: "a/f", Type: tar.TypeReg, Mode: 0o644, Content: "x"},
		tarEntry{Name: "a/.wh.g", Type: tar.TypeReg},
		tarEntry{Name: "a/.wh..wh..opq", Type: tar.TypeReg},
	))
	f.Add(fuzzTar(
		tarEntry{Name: "l", Type: tar.TypeSymlink, Linkname: "../sub"},
		tarEntry{Name: "l/f", Type: tar.TypeReg, Mode: 0o644, Content: "escaped"},
		tarEntry{Name: "h", Type: tar.TypeLink, Linkname: "../f"},
		tarEntry{Name: "../../sentinel", Type: tar.TypeReg, Content: "overwritten"},
	))
	f.Add(fuzzTar(
		tarEntry{Name: "up", Type: tar.TypeSymlink, Linkname: ".."},
		tarEntry{Name: "up/sentinel", Type: tar.TypeReg, Content: "overwritten"},
		tarEntry{Name: "abs", Type: tar.TypeSymlink, Linkname: "/"},
		tarEntry{Name: "abs/x", Type: tar.TypeLink, Linkname: "abs/../../f"},
		tarEntry{Name: "dev", Type: tar.TypeChar, Major: 1, Minor: 3},
		tarEntry{Name: "x", Type: tar.TypeReg, Xattrs: map[string]string{"user.a": "b", "trusted.overlay.opaque": "y"}},
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
		Apply(t.Context(), root, bytes.NewReader(layer), ApplyOptions{NoLchown: os.Geteuid() != 0})
		if after := outsideState(t, parent, root); !reflect.DeepEqual(before, after) {
			t.Fatalf("Apply changed files outside %s:\nbefore: %q\nafter:  %q", root, before, after)
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
