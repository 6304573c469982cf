//go:build linux

package snapshot

import (
	"github.com/builder-dev/builder/internal/archive"

	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listTree returns "path type" lines for everything under dir, and file
// contents after "=".
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := rel + " " + fi.Mode().Type().String()
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += "=" + string(b)
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += "->" + target
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

// TestApplyTraversal feeds malicious layers to Apply and checks that
// nothing outside the layer directory changes, whatever Apply returns.
func TestApplyTraversal(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
		wantErr bool
		// inside is a path (relative to the layer) that must exist after.
		inside string
	}{
		{name: "dotdot", wantErr: true, entries: []tarEntry{
			{Name: "../outside/pwned", Type: '0', Mode: 0o644, Content: "x"}}},
		{name: "dotdot in the middle", wantErr: true, entries: []tarEntry{
			{Name: "a/../../outside/pwned", Type: '0', Mode: 0o644, Content: "x"}}},
		{name: "absolute name stays inside", inside: "OUTSIDE/pwned", entries: []tarEntry{
			{Name: "OUTSIDE/pwned", Type: '0', Mode: 0o644, Content: "x"}}},
		{name: "absolute symlink parent", inside: "OUTSIDE/pwned", entries: []tarEntry{
			{Name: "link", Type: '2', Linkname: "OUTSIDE"},
			{Name: "link/pwned", Type: '0', Mode: 0o644, Content: "x"}}},
		{name: "relative symlink parent", inside: "outside/pwned", entries: []tarEntry{
			{Name: "link", Type: '2', Linkname: "../../../../../../outside"},
			{Name: "link/pwned", Type: '0', Mode: 0o644, Content: "x"}}},
		{name: "chained symlinks", inside: "outside/pwned", entries: []tarEntry{
			{Name: "a", Type: '2', Linkname: "b/.."},
			{Name: "b", Type: '2', Linkname: "../.."},
			{Name: "a/outside/pwned", Type: '0', Mode: 0o644, Content: "x"}}},
		{name: "overwrite through symlink replaces the symlink", inside: "secret", entries: []tarEntry{
			{Name: "secret", Type: '2', Linkname: "OUTSIDE/secret"},
			{Name: "secret", Type: '0', Mode: 0o644, Content: "x"}}},
		{name: "hard link dotdot", wantErr: true, entries: []tarEntry{
			{Name: "hl", Type: '1', Linkname: "../outside/secret"}}},
		{name: "hard link absolute", wantErr: true, entries: []tarEntry{
			{Name: "hl", Type: '1', Linkname: "OUTSIDE/secret"}}},
		{name: "hard link through symlink", wantErr: true, entries: []tarEntry{
			{Name: "l", Type: '2', Linkname: "OUTSIDE"},
			{Name: "hl", Type: '1', Linkname: "l/secret"}}},
		{name: "hard link name through symlink", inside: "OUTSIDE/secret", entries: []tarEntry{
			{Name: "f", Type: '0', Mode: 0o644, Content: "x"},
			{Name: "l", Type: '2', Linkname: "OUTSIDE"},
			{Name: "l/secret", Type: '1', Linkname: "f"}}},
		{name: "whiteout through symlink", entries: []tarEntry{
			{Name: "l", Type: '2', Linkname: "OUTSIDE"},
			{Name: "l/.wh.secret", Type: '0'}}},
		{name: "opaque through symlink", entries: []tarEntry{
			{Name: "l", Type: '2', Linkname: "OUTSIDE"},
			{Name: "l/.wh..wh..opq", Type: '0'}}},
		{name: "directory over symlink", entries: []tarEntry{
			{Name: "l", Type: '2', Linkname: "OUTSIDE"},
			{Name: "l/", Type: '5', Mode: 0o777},
			{Name: "l/pwned", Type: '0', Mode: 0o644, Content: "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			layer := filepath.Join(base, "layer")
			must(t, os.Mkdir(outside, 0o755))
			must(t, os.Mkdir(layer, 0o755))
			must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600))
			before := listTree(t, outside)

			entries := append([]tarEntry(nil), tt.entries...)
			for i := range entries {
				e := &entries[i]
				e.Name = strings.ReplaceAll(e.Name, "OUTSIDE", outside)
				e.Linkname = strings.ReplaceAll(e.Linkname, "OUTSIDE", outside)
				e.UID, e.GID = os.Getuid(), os.Getgid()
			}
			_, err := Apply(t.Context(), layer, bytes.NewReader(makeTar(t, entries)), ApplyOptions{NoLchown: true})
			if tt.wantErr && err == nil {
				t.Errorf("Apply() = nil, want an error")
			}
			if !tt.wantErr && err != nil && !errors.Is(err, unix.EPERM) {
				t.Errorf("Apply() = %v, want success", err)
			}
			if after := listTree(t, outside); !reflect.DeepEqual(after, before) {
				t.Errorf("outside directory changed:\n before %v\n after  %v", before, after)
			}
			if entries, _ := os.ReadDir(base); len(entries) != 2 {
				t.Errorf("new entries next to the layer: %v", entries)
			}
			if _, err := unix.Lgetxattr(outside, archive.TrustedOpaque, nil); err == nil {
				t.Errorf("outside directory got %s", archive.TrustedOpaque)
			}
			if tt.inside != "" {
				p := filepath.Join(layer, strings.ReplaceAll(tt.inside, "OUTSIDE", outside))
				if _, err := os.Lstat(p); err != nil {
					t.Errorf("expected %s inside the layer: %v", tt.inside, err)
				}
			}
		})
	}
}

// TestApplySemantics covers duplicates, missing parents and replacement
// rules, without root.
func TestApplySemantics(t *testing.T) {
	uid, gid := os.Getuid(), os.Getgid()
	tests := []struct {
		name    string
		entries []tarEntry
		want    []string
	}{
		{
			name: "later file wins",
			entries: []tarEntry{
				{Name: "a", Type: '0', Mode: 0o644, Content: "one"},
				{Name: "a", Type: '0', Mode: 0o644, Content: "two"},
			},
			want: []string{". d---------", "a ----------=two"},
		},
		{
			name: "file replaces directory tree",
			entries: []tarEntry{
				{Name: "d/", Type: '5', Mode: 0o755},
				{Name: "d/sub/", Type: '5', Mode: 0o755},
				{Name: "d/sub/x", Type: '0', Mode: 0o644, Content: "x"},
				{Name: "d", Type: '0', Mode: 0o644, Content: "file"},
			},
			want: []string{". d---------", "d ----------=file"},
		},
		{
			name: "directory over directory keeps contents",
			entries: []tarEntry{
				{Name: "d/", Type: '5', Mode: 0o755},
				{Name: "d/x", Type: '0', Mode: 0o644, Content: "x"},
				{Name: "d/", Type: '5', Mode: 0o700},
			},
			want: []string{". d---------", "d d---------", "d/x ----------=x"},
		},
		{
			name: "directory replaces symlink",
			entries: []tarEntry{
				{Name: "s", Type: '2', Linkname: "target"},
				{Name: "s/", Type: '5', Mode: 0o755},
				{Name: "s/f", Type: '0', Mode: 0o644, Content: "f"},
			},
			want: []string{". d---------", "s d---------", "s/f ----------=f"},
		},
		{
			name: "missing parents are created",
			entries: []tarEntry{
				{Name: "./x/y/z", Type: '0', Mode: 0o644, Content: "z"},
				{Name: "/abs/f", Type: '0', Mode: 0o644, Content: "f"},
			},
			want: []string{". d---------", "abs d---------", "abs/f ----------=f", "x d---------", "x/y d---------", "x/y/z ----------=z"},
		},
		{
			name: "hard link and aufs metadata",
			entries: []tarEntry{
				{Name: "f", Type: '0', Mode: 0o644, Content: "data"},
				{Name: "g", Type: '1', Linkname: "./f"},
				{Name: ".wh..wh.plnk/", Type: '5', Mode: 0o700},
				{Name: ".wh..wh.aufs", Type: '0'},
				{Name: "pax_global_header", Type: 'g'},
			},
			want: []string{". d---------", "f ----------=data", "g ----------=data"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			entries := append([]tarEntry(nil), tt.entries...)
			for i := range entries {
				entries[i].UID, entries[i].GID = uid, gid
			}
			if _, err := Apply(t.Context(), dir, bytes.NewReader(makeTar(t, entries)), ApplyOptions{NoLchown: true}); err != nil {
				t.Fatalf("Apply() = %v", err)
			}
			if got := listTree(t, dir); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Apply() tree = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestApplyMetadata(t *testing.T) {
	dir := t.TempDir()
	mtime := time.Date(2021, 2, 3, 4, 5, 6, 789, time.UTC)
	uid, gid := os.Getuid(), os.Getgid()
	entries := []tarEntry{
		{Name: "ro/", Type: '5', Mode: 0o555, UID: uid, GID: gid, ModTime: mtime},
		{Name: "ro/f", Type: '0', Mode: 0o400, UID: uid, GID: gid, ModTime: mtime, Content: "x"},
		{Name: "ro/sticky/", Type: '5', Mode: 0o1777, UID: uid, GID: gid, ModTime: mtime},
		{Name: "ro/l", Type: '2', Linkname: "f", UID: uid, GID: gid, ModTime: mtime},
	}
	if _, err := Apply(t.Context(), dir, bytes.NewReader(makeTar(t, entries)), ApplyOptions{NoLchown: true}); err != nil {
		t.Fatalf("Apply() = %v", err)
	}
	tests := []struct {
		path string
		mode uint32
	}{
		{"ro", unix.S_IFDIR | 0o555},
		{"ro/f", unix.S_IFREG | 0o400},
		{"ro/sticky", unix.S_IFDIR | 0o1777},
		{"ro/l", unix.S_IFLNK | 0o777},
	}
	for _, tt := range tests {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(dir, tt.path), &st))
		if st.Mode != tt.mode {
			t.Errorf("mode of %s = %#o, want %#o", tt.path, st.Mode, tt.mode)
		}
		if got := time.Unix(st.Mtim.Unix()).UTC(); !got.Equal(mtime) {
			t.Errorf("mtime of %s = %v, want %v (directories must get theirs after their contents)", tt.path, got, mtime)
		}
	}
	// Let t.TempDir's cleanup remove the read-only directory.
	must(t, os.Chmod(filepath.Join(dir, "ro"), 0o755))
}

func TestApplyRejectsBadEntries(t *testing.T) {
	tests := []struct {
		name  string
		entry tarEntry
	}{
		{"whiteout without name", tarEntry{Name: "d/.wh.", Type: '0'}},
		{"root as file", tarEntry{Name: ".", Type: '0', Content: "x"}},
		{"hard link to missing file", tarEntry{Name: "l", Type: '1', Linkname: "missing"}},
		{"hard link to root", tarEntry{Name: "l", Type: '1', Linkname: "/"}},
		{"unknown type", tarEntry{Name: "x/y", Type: 'Z'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Apply(t.Context(), dir, bytes.NewReader(makeTar(t, []tarEntry{tt.entry})), ApplyOptions{NoLchown: true})
			if err == nil {
				t.Errorf("Apply(%q) = nil, want error", tt.entry.Name)
			}
			if tt.entry.Type == 'Z' {
				if got := listTree(t, dir); len(got) != 1 {
					t.Errorf("Apply(unknown type) changed the tree: %q", got)
				}
			}
		})
	}
}
