//go:build linux

package localctx

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/builder-dev/builder/internal/archive"
	"golang.org/x/sys/unix"
)

// walk lists everything below the directory top, a block of entries per
// directory, in no particular order (serial: all on the calling goroutine),
// asking filter about each path (relative, slash-separated) whether to
// include it and whether to descend into it. Directories are read in
// parallel and entries are stat'ed relative to their directory's fd, which
// makes a rebuild's check of a large, unchanged context cheap.
func walk(top string, serial bool, filter func(dir *dirInfo, name string, isDir bool) (include, descend bool)) ([][]*entry, error) {
	workers := runtime.NumCPU()
	if serial {
		workers = 1
	}
	// A shared stack of directories to read: every worker takes the next
	// one, so all stay busy whatever the tree's shape.
	type job struct{ dir, sub string }
	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu)
		stack   = []job{{top, ""}}
		pending = 1 // directories queued or being read
		out     [][]*entry
		failure error
	)
	work := func() {
		buf := make([]byte, direntBuf)
		for {
			mu.Lock()
			for len(stack) == 0 && pending > 0 && failure == nil {
				cond.Wait()
			}
			if len(stack) == 0 || failure != nil {
				mu.Unlock()
				return
			}
			j := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			mu.Unlock()

			entries, subdirs, err := readDir(j.dir, j.sub, buf, filter)

			mu.Lock()
			if err != nil && failure == nil {
				failure = err
			}
			if len(entries) > 0 {
				out = append(out, entries)
			}
			for _, name := range subdirs {
				s := name
				if j.sub != "" {
					s = j.sub + "/" + name
				}
				stack = append(stack, job{j.dir + "/" + name, s})
			}
			pending += len(subdirs) - 1
			cond.Broadcast()
			mu.Unlock()
		}
	}
	if workers == 1 {
		work()
	} else {
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				work()
			}()
		}
		wg.Wait()
	}
	return out, failure
}

// readDir lists one directory: the entries filter includes, and the
// subdirectories to descend into. The directory's names share one string
// and are stat'ed relative to its fd, so that checking a large unchanged
// context costs a stat per file and few allocations.
func readDir(dir, sub string, buf []byte, filter func(dir *dirInfo, name string, isDir bool) (include, descend bool)) ([]*entry, []string, error) {
	di := &dirInfo{path: dir, rel: sub}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	all, ends, err := readNames(fd, buf)
	if err != nil {
		return nil, nil, &os.PathError{Op: "readdir", Path: dir, Err: err}
	}
	// One allocation for the directory's entries, not one each.
	block := make([]entry, 0, len(ends))
	local := make([]*entry, 0, len(ends))
	var subdirs []string
	scratch := make([]byte, 0, 256)
	start := 0
	for _, end := range ends {
		name := all[start:end]
		start = end
		var st unix.Stat_t
		if err := lstatAt(fd, name, &scratch, &st); err != nil {
			return nil, nil, &os.PathError{Op: "lstat", Path: filepath.Join(dir, name), Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			// A socket (git's fsmonitor--daemon.ipc) is no file to copy
			// or checksum; BuildKit leaves them out too.
			continue
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		include, descend := filter(di, name, isDir)
		if include {
			block = append(block, entry{dir: di, name: name, mode: archive.UnixMode(st.Mode), key: FileKey{
				Size: st.Size, MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano(), Ino: st.Ino,
			}})
			e := &block[len(block)-1]
			if e.mode&fs.ModeSymlink != 0 {
				if e.link, err = os.Readlink(e.hostPath()); err != nil {
					return nil, nil, err
				}
			}
			local = append(local, e)
		}
		if isDir && descend {
			subdirs = append(subdirs, name)
		}
	}
	return local, subdirs, nil
}

// readNames lists a directory's entries ("." and ".." left out) with few
// getdents calls (a large buffer, and no netpoller registration as os.File
// would attempt): all names in one string, and where each ends.
func readNames(fd int, buf []byte) (string, []int, error) {
	var names []byte
	var ends []int
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		if n <= 0 {
			return string(names), ends, nil
		}
		if names == nil {
			// A record is about 24 bytes for a short name: room for
			// most directories' names without growing.
			names = make([]byte, 0, n)
			ends = make([]int, 0, n/24+1)
		}
		for rec := buf[:n]; len(rec) > 0; {
			name, reclen, ok := direntName(rec)
			if !ok {
				return "", nil, unix.EIO
			}
			rec = rec[reclen:]
			if len(name) == 0 || string(name) == "." || string(name) == ".." {
				continue
			}
			names = append(names, name...)
			ends = append(ends, len(names))
		}
	}
}

// direntName returns the name of the linux_dirent64 record at the start of
// rec ("" for an absent entry) and the record's length.
func direntName(rec []byte) (name []byte, reclen int, ok bool) {
	const nameOff = 19 // d_ino 8, d_off 8, d_reclen 2, d_type 1
	if len(rec) < nameOff {
		return nil, 0, false
	}
	reclen = int(binary.NativeEndian.Uint16(rec[16:18]))
	if reclen < nameOff || reclen > len(rec) {
		return nil, 0, false
	}
	if binary.NativeEndian.Uint64(rec[0:8]) == 0 {
		// An entry without an inode is absent (as ParseDirent has it).
		return nil, reclen, true
	}
	name = rec[nameOff:reclen]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	return name, reclen, true
}

// direntBuf is the size of a walker's getdents buffer. A variable, so that
// the buffer is on the heap: 64 KiB on a goroutine's stack makes it grow
// (and be copied) to 128 KiB.
var direntBuf = 64 << 10
