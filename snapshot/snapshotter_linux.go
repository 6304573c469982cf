//go:build linux

package snapshot

import (
	"fmt"
	"os"
	"path/filepath"

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
// each inode once. It stats each entry relative to its directory's
// descriptor (fstatat), unsorted: a path lookup from the root per entry
// and WalkDir's sorting cost most of the CPU of measuring a pulled
// Debian base (62k entries) at the end of a cold build.
//
// It holds at most maxUsageFDs descriptors however deep the tree (a RUN
// can make one 100,000 directories deep; a descriptor per level would
// exhaust the process's, every build's in `builder serve`): a directory's
// names are read whole when it is opened, the shallowest held directory
// is closed when the limit is passed, and it is reopened on the way back
// up as ".." of its child, checked to be the same inode.
func diskUsage(dir string) (int64, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	u := usageWalk{seen: map[devIno]bool{}}
	err = u.walk(fd, dir)
	for _, f := range u.stack {
		if f.fd >= 0 {
			unix.Close(f.fd)
		}
	}
	return u.total, err
}

// maxUsageFDs bounds the descriptors diskUsage holds.
const maxUsageFDs = 64

type usageWalk struct {
	seen  map[devIno]bool
	total int64
	stack []usageDir
	open  int
}

// usageDir is a directory being walked: fd is -1 while it is closed.
type usageDir struct {
	fd    int
	path  string
	id    devIno
	names []string
}

// walk adds everything under the directory open as fd (named path).
func (u *usageWalk) walk(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	u.total += st.Blocks * 512
	if err := u.push(fd, path, st); err != nil {
		return err
	}
	for len(u.stack) > 0 {
		top := &u.stack[len(u.stack)-1]
		if len(top.names) == 0 {
			if err := u.pop(); err != nil {
				return err
			}
			continue
		}
		name := top.names[0]
		top.names = top.names[1:]
		p := filepath.Join(top.path, name)
		if err := unix.Fstatat(top.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "fstatat", Path: p, Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			u.total += st.Blocks * 512
			sub, err := unix.Openat(top.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return &os.PathError{Op: "open", Path: p, Err: err}
			}
			if err := u.push(sub, p, st); err != nil {
				return err
			}
			continue
		}
		if st.Nlink > 1 {
			k := devIno{uint64(st.Dev), st.Ino}
			if u.seen[k] {
				continue
			}
			u.seen[k] = true
		}
		u.total += st.Blocks * 512
	}
	return nil
}

// push reads the names of the directory open as fd (stat st) and makes it
// the current one, closing the shallowest held directory past
// maxUsageFDs.
func (u *usageWalk) push(fd int, path string, st unix.Stat_t) error {
	names, err := readNames(fd, path)
	if err != nil {
		unix.Close(fd)
		return err
	}
	u.stack = append(u.stack, usageDir{fd: fd, path: path, id: devIno{uint64(st.Dev), st.Ino}, names: names})
	u.open++
	if u.open > maxUsageFDs {
		// The held ones are the deepest maxUsageFDs+1: close the first.
		d := &u.stack[len(u.stack)-1-maxUsageFDs]
		unix.Close(d.fd)
		d.fd = -1
		u.open--
	}
	return nil
}

// pop closes the current directory, reopening its parent as its ".."
// first if the parent was closed.
func (u *usageWalk) pop() error {
	n := len(u.stack)
	cur := u.stack[n-1]
	defer func() {
		unix.Close(cur.fd)
		u.open--
	}()
	u.stack = u.stack[:n-1]
	if n == 1 || u.stack[n-2].fd >= 0 {
		return nil
	}
	parent := &u.stack[n-2]
	fd, err := unix.Openat(cur.fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: parent.path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || (devIno{uint64(st.Dev), st.Ino}) != parent.id {
		unix.Close(fd)
		return fmt.Errorf("measuring %s: the directory moved while it was measured", parent.path)
	}
	parent.fd = fd
	u.open++
	return nil
}

// readNames reads all names of the directory open as fd (not closing it).
func readNames(fd int, path string) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, &os.PathError{Op: "dup", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(dup), path)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return names, nil
}
