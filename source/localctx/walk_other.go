//go:build !linux

package localctx

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// walk lists everything below the directory top; see the Linux version.
func walk(top string, serial bool, filter func(dir *dirInfo, name string, isDir bool) (include, descend bool)) ([][]*entry, error) {
	var out []*entry
	dirs := map[string]*dirInfo{".": {path: top}}
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == top {
			return err
		}
		sub, _ := filepath.Rel(top, p)
		sub = filepath.ToSlash(sub)
		parent := path.Dir(sub)
		di := dirs[parent]
		if d.IsDir() {
			dirs[sub] = &dirInfo{path: p, rel: sub}
		}
		if d.Type()&fs.ModeSocket != 0 {
			// A socket is no file to copy or checksum, as on Linux.
			return nil
		}
		include, descend := filter(di, d.Name(), d.IsDir())
		if include {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			e := &entry{dir: di, name: d.Name(), mode: fi.Mode(), key: fileKey(fi)}
			if fi.Mode()&fs.ModeSymlink != 0 {
				if e.link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			out = append(out, e)
		}
		if d.IsDir() && !descend {
			return filepath.SkipDir
		}
		return nil
	})
	// One block: collect orders entries within blocks too.
	return [][]*entry{out}, err
}
