//go:build linux

package source

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// walk lists everything below the directory top, in no particular order
// (serial: all on the calling goroutine),
// asking filter about each path (relative, slash-separated) whether to
// include it and whether to descend into it. Directories are read in
// parallel and entries are stat'ed relative to their directory's fd, which
// makes a rebuild's check of a large, unchanged context cheap.
func walk(top string, serial bool, filter func(dir *dirInfo, name string, isDir bool) (include, descend bool)) ([]*entry, error) {
	var (
		mu  sync.Mutex
		out []*entry
		g   errgroup.Group
	)
	g.SetLimit(runtime.NumCPU())
	tryGo := g.TryGo
	if serial {
		tryGo = func(func() error) bool { return false }
	}
	var readDir func(dir, sub string) error
	readDir = func(dir, sub string) error {
		di := &dirInfo{path: dir, rel: sub}
		f, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer f.Close()
		names, err := f.Readdirnames(-1)
		if err != nil {
			return &os.PathError{Op: "readdir", Path: dir, Err: err}
		}
		fd := int(f.Fd())
		// One allocation for the directory's entries, not one each.
		block := make([]entry, 0, len(names))
		local := make([]*entry, 0, len(names))
		var subdirs []string
		for _, name := range names {
			var st unix.Stat_t
			if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return &os.PathError{Op: "lstat", Path: filepath.Join(dir, name), Err: err}
			}
			isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
			include, descend := filter(di, name, isDir)
			if include {
				block = append(block, entry{dir: di, name: name, mode: modeOf(st.Mode), key: FileKey{
					Size: st.Size, MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano(), Ino: st.Ino,
				}})
				e := &block[len(block)-1]
				if e.mode&fs.ModeSymlink != 0 {
					if e.link, err = os.Readlink(e.hostPath()); err != nil {
						return err
					}
				}
				local = append(local, e)
			}
			if isDir && descend {
				subdirs = append(subdirs, name)
			}
		}
		mu.Lock()
		out = append(out, local...)
		mu.Unlock()
		for _, name := range subdirs {
			d, s := dir+"/"+name, name
			if sub != "" {
				s = sub + "/" + name
			}
			// Hand the directory to another worker if one is free, else
			// read it here: waiting for a free worker could deadlock.
			if !tryGo(func() error { return readDir(d, s) }) {
				if err := readDir(d, s); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if serial {
		if err := readDir(top, ""); err != nil {
			return nil, err
		}
		return out, nil
	}
	g.Go(func() error { return readDir(top, "") })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// modeOf converts a stat mode to an fs.FileMode, as os.Lstat does.
func modeOf(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
