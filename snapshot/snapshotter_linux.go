//go:build linux

package snapshot

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
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
// Its memory and descriptors stay bounded however deep or wide the tree
// (a RUN can make one 100,000 directories deep, or a directory of 10
// million entries; `builder serve` measures every build's): it keeps a
// name per level, not a path, reads each directory a chunk of entries at
// a time, and holds at most maxUsageFDs descriptors. When the limit is
// passed the shallowest held directory is closed, its unread chunk
// dropped; on the way back up it is reopened as ".." of its child,
// checked to be the same inode, and seeked to the offset after the last
// entry it handed out (the telldir/seekdir cookie, which Linux
// filesystems keep valid across opens of an unchanged directory).
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

const (
	// maxUsageFDs bounds the descriptors diskUsage holds.
	maxUsageFDs = 64
	// direntBufSize is the chunk of entries read by one getdents, as
	// os.File reads them.
	direntBufSize = 8192
)

type usageWalk struct {
	seen  map[devIno]bool
	total int64
	stack []usageDir
	open  int
	free  [][]byte // entry buffers of closed directories, for reuse
}

// usageDir is a directory being walked: fd is -1 while it is closed.
// buf[pos:end] holds the entries read and not yet handed out; off is the
// directory offset after the last one handed out.
type usageDir struct {
	fd       int
	name     string // in its parent; the root's is its path
	id       devIno
	off      int64
	buf      []byte
	pos, end int
}

// walk adds everything under the directory open as fd (named path).
func (u *usageWalk) walk(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	u.total += st.Blocks * 512
	u.push(fd, path, st)
	for len(u.stack) > 0 {
		top := &u.stack[len(u.stack)-1]
		name, err := u.next(top)
		if err != nil {
			return err
		}
		if name == "" {
			if err := u.pop(); err != nil {
				return err
			}
			continue
		}
		if err := unix.Fstatat(top.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "fstatat", Path: u.pathOf(len(u.stack), name), Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			u.total += st.Blocks * 512
			sub, err := unix.Openat(top.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return &os.PathError{Op: "open", Path: u.pathOf(len(u.stack), name), Err: err}
			}
			u.push(sub, name, st)
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

// push makes the directory open as fd (stat st, called name) the current
// one, closing the shallowest held directory past maxUsageFDs. The held
// ones are always the deepest of the stack.
func (u *usageWalk) push(fd int, name string, st unix.Stat_t) {
	u.stack = append(u.stack, usageDir{fd: fd, name: name, id: devIno{uint64(st.Dev), st.Ino}, buf: u.buffer()})
	u.open++
	if u.open > maxUsageFDs {
		d := &u.stack[len(u.stack)-1-maxUsageFDs]
		unix.Close(d.fd)
		d.fd = -1
		u.free = append(u.free, d.buf)
		d.buf, d.pos, d.end = nil, 0, 0
		u.open--
	}
}

// pop closes the current directory, reopening its parent as its ".."
// first if the parent was closed, at the parent's offset.
func (u *usageWalk) pop() error {
	n := len(u.stack)
	cur := u.stack[n-1]
	defer func() {
		unix.Close(cur.fd)
		u.open--
		u.free = append(u.free, cur.buf)
	}()
	u.stack[n-1] = usageDir{}
	u.stack = u.stack[:n-1]
	if n == 1 || u.stack[n-2].fd >= 0 {
		return nil
	}
	parent := &u.stack[n-2]
	fd, err := unix.Openat(cur.fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: u.pathOf(n-1, ""), Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || (devIno{uint64(st.Dev), st.Ino}) != parent.id {
		unix.Close(fd)
		return fmt.Errorf("measuring %s: the directory moved while it was measured", u.pathOf(n-1, ""))
	}
	if _, err := unix.Seek(fd, parent.off, io.SeekStart); err != nil {
		unix.Close(fd)
		return &os.PathError{Op: "seek", Path: u.pathOf(n-1, ""), Err: err}
	}
	parent.fd = fd
	parent.buf = u.buffer()
	u.open++
	return nil
}

// buffer returns an entry buffer, reusing a closed directory's.
func (u *usageWalk) buffer() []byte {
	if n := len(u.free); n > 0 {
		b := u.free[n-1]
		u.free = u.free[:n-1]
		return b
	}
	return make([]byte, direntBufSize)
}

// next hands out d's next name other than "." and "..", reading its next
// chunk of entries when needed; "" at its end.
func (u *usageWalk) next(d *usageDir) (string, error) {
	for {
		if d.pos >= d.end {
			n, err := unix.Getdents(d.fd, d.buf)
			for err == unix.EINTR {
				n, err = unix.Getdents(d.fd, d.buf)
			}
			if err != nil {
				return "", &os.PathError{Op: "getdents", Path: u.pathOf(len(u.stack), ""), Err: err}
			}
			if n <= 0 {
				return "", nil
			}
			d.pos, d.end = 0, n
		}
		// struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16,
		// d_type u8, then the name, NUL-terminated and padded.
		const reclenAt, nameAt = 16, 19
		rec := d.buf[d.pos:d.end]
		reclen := 0
		if len(rec) >= nameAt {
			reclen = int(binary.NativeEndian.Uint16(rec[reclenAt:]))
		}
		if reclen < nameAt || reclen > len(rec) {
			return "", fmt.Errorf("reading %s: malformed directory entry", u.pathOf(len(u.stack), ""))
		}
		rec = rec[:reclen]
		d.pos += reclen
		d.off = int64(binary.NativeEndian.Uint64(rec[8:]))
		name := rec[nameAt:]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if binary.NativeEndian.Uint64(rec) == 0 || string(name) == "." || string(name) == ".." {
			continue
		}
		return string(name), nil
	}
}

// pathOf names, for an error, the entry name of the directory at depth
// i of the stack (i counted from 1; name "" for the directory itself).
// Building it only here keeps a name, not a path, per level.
func (u *usageWalk) pathOf(i int, name string) string {
	elems := make([]string, 0, i+1)
	for _, d := range u.stack[:i] {
		elems = append(elems, d.name)
	}
	return filepath.Join(append(elems, name)...)
}
