//go:build linux

package snapshot

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/builder-dev/builder/internal/testutil"
)

// TestApplySparse applies a PAX 1.0 sparse entry of 256 MiB holding 12 KiB
// of data: the file has its full apparent size and content, but its holes
// stay holes (archive/tar expands them to zeros; Apply must not write
// them).
func TestApplySparse(t *testing.T) {
	const size = 256 << 20
	head := bytes.Repeat([]byte("h"), 4096)
	mid := bytes.Repeat([]byte("m"), 8192)
	layer := testutil.SparseTar("var/log/lastlog", size, []testutil.Fragment{{Offset: 0, Data: head}, {Offset: 100 << 20, Data: mid}})
	dir := t.TempDir()
	res, err := Apply(t.Context(), dir, bytes.NewReader(layer), ApplyOptions{NoLchown: true, CompressedSize: int64(len(layer)), Name: "layer sha256:test"})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "var/log/lastlog")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != size {
		t.Errorf("apparent size = %d, want %d", fi.Size(), size)
	}
	if blocks := fi.Sys().(*syscall.Stat_t).Blocks * 512; blocks > 1<<20 {
		t.Errorf("the file takes %d bytes on disk, want its 12 KiB of data (holes kept as holes)", blocks)
	}
	if res.Size != size || res.Written != int64(len(head)+len(mid)) {
		t.Errorf("ApplyResult = size %d written %d, want %d and %d", res.Size, res.Written, size, len(head)+len(mid))
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range []struct {
		off  int64
		want []byte
	}{{0, head}, {4096, make([]byte, 4096)}, {100 << 20, mid}, {size - 10, make([]byte, 10)}} {
		got := make([]byte, len(c.want))
		if _, err := f.ReadAt(got, c.off); err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("content at %d = %.20q…, %v; want %.20q…", c.off, got, err, c.want)
		}
	}
}

// TestApplySparseBomb applies the review's bomb, a 10 KiB layer with a
// sparse entry of 20 GiB: Apply refuses it before writing, naming the
// layer, instead of writing zeros until the disk is full.
func TestApplySparseBomb(t *testing.T) {
	layer := testutil.SparseTar("bomb", 20<<30, []testutil.Fragment{{Offset: 0, Data: bytes.Repeat([]byte("b"), 8192)}})
	dir := t.TempDir()
	_, err := Apply(t.Context(), dir, bytes.NewReader(layer), ApplyOptions{NoLchown: true, CompressedSize: int64(len(layer)), Name: "layer sha256:bomb"})
	if err == nil || !strings.Contains(err.Error(), "layer sha256:bomb") || !strings.Contains(err.Error(), "bomb") {
		t.Fatalf("Apply = %v, want an error naming the layer and the bomb", err)
	}
	t.Log(err)
	if fi, err := os.Stat(filepath.Join(dir, "bomb")); err == nil {
		t.Errorf("the bomb was written: %d bytes", fi.Size())
	}
}
