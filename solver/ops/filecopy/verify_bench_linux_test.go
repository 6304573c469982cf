//go:build linux

package filecopy

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/builder-dev/builder/source/localctx"
	"golang.org/x/sys/unix"
)

// BenchmarkCheck5000: what a COPY of 5,000 context files adds to check
// them (checkRead): a stat of each open file and its lookup in what the
// checksum covered.
func BenchmarkCheck5000(b *testing.B) {
	ctxDir := b.TempDir()
	var fds []int
	var subs []string
	for d := range 100 {
		p := filepath.Join(ctxDir, fmt.Sprintf("d%d", d))
		os.MkdirAll(p, 0o755)
		for f := range 50 {
			os.WriteFile(filepath.Join(p, fmt.Sprintf("f%d", f)), make([]byte, 1024), 0o644)
			fd, err := unix.Open(filepath.Join(p, fmt.Sprintf("f%d", f)), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(fd)
			fds = append(fds, fd)
			subs = append(subs, fmt.Sprintf("d%d/f%d", d, f))
		}
	}
	tree, _ := localctx.NewTree(ctxDir, nil)
	tree.Verify = true
	if _, err := tree.Checksum(".", nil); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		x, _ := tree.Expect(".")
		for i, fd := range fds {
			if err := checkRead(x, subs[i], fd, ""); err != nil {
				b.Fatal(err)
			}
		}
	}
}
