package fdfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteSparse checks hole detection at block boundaries: data blocks
// are written, zero blocks are skipped, and the length is exact.
func TestWriteSparse(t *testing.T) {
	data := bytes.Repeat([]byte{0}, 3*sparseBlock+100)
	data[sparseBlock+1] = 'x'    // the second block is data
	data[3*sparseBlock+50] = 'y' // and the short tail
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, written, err := WriteSparse(f, bytes.NewReader(data), make([]byte, 2*sparseBlock))
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(data)) || written != sparseBlock+100 {
		t.Errorf("WriteSparse = %d, %d; want %d, %d", size, written, len(data), sparseBlock+100)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("content differs (%v)", err)
	}
}

func TestWriteSparseEdges(t *testing.T) {
	for _, n := range []int{0, 1, sparseBlock, 3*sparseBlock + 7} {
		f, err := os.Create(filepath.Join(t.TempDir(), "f"))
		if err != nil {
			t.Fatal(err)
		}
		size, written, err := WriteSparse(f, bytes.NewReader(make([]byte, n)), nil)
		f.Close()
		fi, serr := os.Stat(f.Name())
		if err != nil || serr != nil || size != int64(n) || written != 0 || fi.Size() != int64(n) {
			t.Errorf("WriteSparse of %d zeros = %d, %d, %v; file size %d", n, size, written, err, fi.Size())
		}
	}
}
