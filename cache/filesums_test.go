package cache

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFileSumsLookup(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fs := db.FileSums()
	k := func(n int64) FileKey { return FileKey{Size: n, MtimeNs: n * 10, CtimeNs: n * 100, Ino: uint64(n)} }
	fs.Store([]string{"/c/a", "/c/b", "/c/d"}, []FileKey{k(1), k(2), k(4)}, [][32]byte{{1}, {2}, {4}}, nil)

	tests := []struct {
		paths []string
		keys  []FileKey
		want  []bool
	}{
		{[]string{"/c/a", "/c/b", "/c/d"}, []FileKey{k(1), k(2), k(4)}, []bool{true, true, true}},
		{[]string{"/c/d", "/c/a"}, []FileKey{k(4), k(1)}, []bool{true, true}},
		{[]string{"/c/a", "/c/c", "/c/d", "/c/e"}, []FileKey{k(1), k(3), k(5), k(5)}, []bool{true, false, false, false}},
		{[]string{"/a", "/z"}, []FileKey{k(1), k(1)}, []bool{false, false}},
	}
	for _, tt := range tests {
		var paths [][]byte
		for _, p := range tt.paths {
			paths = append(paths, []byte(p))
		}
		sums, ok := fs.Lookup(paths, tt.keys)
		for i := range tt.paths {
			if ok[i] != tt.want[i] || (ok[i] && sums[i][0] != byte(tt.keys[i].Size)) {
				t.Errorf("Lookup(%v)[%d] = %v %v, want found=%v", tt.paths, i, sums[i][0], ok[i], tt.want[i])
			}
		}
	}
}

// TestDropGoneTrees: the tree records of removed roots go, those of roots
// still there stay.
func TestDropGoneTrees(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fs := db.FileSums()
	kept, gone := filepath.Join(dir, "kept"), filepath.Join(dir, "gone")
	id := func(root, rel string) []byte {
		return []byte(root + "\x00" + rel + "\x00" + "0123456789abcdef0123456789abcdef")
	}
	ids := [][]byte{id(kept, "."), id(kept, "sub"), id(gone, "."), id(gone+"2", ".")}
	if err := os.Mkdir(kept, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, i := range ids {
		fs.Store(nil, nil, nil, &TreeSums{ID: i, Sums: [][32]byte{{1}}})
	}
	n, err := fs.DropGoneTrees()
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("DropGoneTrees removed %d records, want 2", n)
	}
	for i, want := range []bool{true, true, false, false} {
		if _, ok := fs.LookupTree(ids[i]); ok != want {
			t.Errorf("record %q present = %v, want %v", ids[i], ok, want)
		}
	}
}
