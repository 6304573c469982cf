package archive

import (
	"os"
	"path/filepath"
)

// RemoveAll is os.RemoveAll that also removes directories whose mode
// forbids it (overlay's work/work is mode 000, and a layer may hold 0555
// dirs), which matters when running without CAP_DAC_OVERRIDE.
func RemoveAll(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	// WalkDir calls fn on a directory before reading it, so the chmod
	// lands in time for the walk to descend.
	_ = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}
