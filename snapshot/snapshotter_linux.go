//go:build linux

package snapshot

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

func checkPlatform() error { return nil }

// syncFS flushes the whole filesystem that holds dir. One syncfs is much
// cheaper than an fsync per file of a layer, and it also covers the
// directory entries.
func syncFS(dir string) error {
	f, err := openSync(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// fsSync is a descriptor of a directory kept open for syncfs. The kernel
// reports a writeback error to a descriptor opened before it happened
// even if another syncfs (another process's, sync -f) reported it first;
// a descriptor opened afterwards is told only of errors nobody saw.
type fsSync struct {
	fd  int
	dir string
}

func openSync(dir string) (Syncer, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &fsSync{fd: fd, dir: dir}, nil
}

func (f *fsSync) Sync() error {
	if err := unix.Syncfs(f.fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: f.dir, Err: err}
	}
	return nil
}

func (f *fsSync) Close() error { return unix.Close(f.fd) }

type devIno struct{ dev, ino uint64 }

// diskUsage sums the allocated blocks of everything under dir, counting
// each inode once.
func diskUsage(dir string) (int64, error) {
	seen := map[devIno]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat information", p)
		}
		k := devIno{uint64(st.Dev), st.Ino}
		if st.Nlink > 1 && !fi.IsDir() {
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += int64(st.Blocks) * 512
		return nil
	})
	return total, err
}
