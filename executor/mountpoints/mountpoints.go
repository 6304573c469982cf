// Package mountpoints is the layer of mountpoints beneath a sandbox's
// rootfs. The sandbox init mounts /proc, /dev, /sys, /etc/hosts and
// /etc/resolv.conf on mountpoints it creates, when the image lacks them,
// in the overlay's upper directory, and executor.Run removes them from
// there afterwards: a dozen journaled creates and unlinks per step for an
// image built FROM scratch or one without /etc/hosts. Instead, an overlay
// rootfs gets one more, lowest, layer that has them all, made once per
// state directory: the image's own entries hide it, nothing of it reaches
// the upper directory unless the step writes beside a mountpoint (then
// overlay copies the directory up, as the init would have created it),
// and overlay never writes to a lower layer. The init still creates what
// is missing, for other rootfs kinds and for an image that hides a
// layer's /etc (a whiteout or an opaque directory).
package mountpoints

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/builder-dev/builder/snapshot"
	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// entries are the layer's contents: directories end in "/".
var entries = []string{"proc/", "dev/", "sys/", "etc/", "etc/hosts", "etc/resolv.conf"}

var state struct {
	sync.Mutex
	dir   string // where to keep the layer; "" for none
	layer string // the layer, once made
}

// Use keeps the layer of mountpoints in dir (made on first use); "" turns
// it off.
func Use(dir string) {
	state.Lock()
	defer state.Unlock()
	if state.dir != dir {
		state.dir, state.layer = dir, ""
	}
}

// Dir is where the layer is kept, as Use set it.
func Dir() string {
	state.Lock()
	defer state.Unlock()
	return state.dir
}

// current returns the layer's directory, making it the first time;
// "" when there is none (no directory set, or making it failed: the init
// then creates the mountpoints as before).
func current() string {
	state.Lock()
	defer state.Unlock()
	if state.layer != "" || state.dir == "" {
		return state.layer
	}
	layer, err := makeLayer(state.dir)
	if err != nil {
		state.dir = "" // do not retry at every step
		return ""
	}
	state.layer = layer
	return layer
}

// Prepare makes the layer now, if Use set a directory, rather than at the
// first Add: a sandbox's set-up can do it ahead.
func Prepare() { current() }

// layerName is the layer's directory in the state directory. It changes
// when what checkLayer requires does, so that a layer an older builder
// made (mountpoints-1 could hold modes of its umask) is not reused.
const layerName = "mountpoints-2"

// makeLayer makes dir/mountpoints-2 if missing (built aside and
// renamed into place, so that concurrent builder processes agree) and
// checks that it holds the entries and nothing else.
func makeLayer(dir string) (string, error) {
	layer := filepath.Join(dir, layerName)
	err := checkLayer(layer)
	if err == nil {
		return layer, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if !errors.Is(err, fs.ErrNotExist) {
		// A layer that is not as made here (changed by hand, or by
		// another program): move it aside and make it again.
		bad, err := os.MkdirTemp(dir, ".mountpoints-bad-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(bad)
		if err := os.Rename(layer, filepath.Join(bad, "layer")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	tmp, err := os.MkdirTemp(dir, ".mountpoints-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	for _, e := range entries {
		p := filepath.Join(tmp, e)
		if strings.HasSuffix(e, "/") {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, nil, 0o644)
		}
		// The modes are the image's wherever it lacks these: not those
		// of builder's umask (077 would hide /etc/hosts from a
		// non-root USER, and a write under /etc would copy a 0700 etc/
		// up into the layer).
		if err == nil {
			err = os.Chmod(p, entryMode(e))
		}
		if err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, layer); err != nil && !errors.Is(err, fs.ErrExist) { // ErrExist: also ENOTEMPTY, another process won
		return "", err
	}
	return layer, checkLayer(layer)
}

// entryMode is the mode of an entry: directories end in "/".
func entryMode(e string) fs.FileMode {
	if e == "" || strings.HasSuffix(e, "/") {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

// checkLayer checks that layer holds exactly the entries, as makeLayer
// makes them: directories 0755 and empty regular files 0644, owned by
// this process's user (root, or root of builder's user namespace when
// rootless), nothing else.
func checkLayer(layer string) error {
	var found []string
	err := filepath.WalkDir(layer, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(layer, p)
		e := filepath.ToSlash(rel)
		switch {
		case rel == ".":
			e = ""
		case d.IsDir():
			e += "/"
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		if e != "" && !slices.Contains(entries, e) || fi.Mode() != entryMode(e) || fi.Size() != 0 && !fi.IsDir() ||
			st == nil || int(st.Uid) != os.Geteuid() {
			return fmt.Errorf("mountpoint layer %s: unexpected %s (%v)", layer, e, fi.Mode())
		}
		found = append(found, e)
		return nil
	})
	if err == nil && len(found) != len(entries)+1 {
		err = fmt.Errorf("mountpoint layer %s: holds %v, want %v", layer, found, entries)
	}
	return err
}

// Add adds the layer of mountpoints beneath an overlay rootfs's lower
// layers; any other rootfs, or any rootfs when there is no layer, is
// returned as it is.
func Add(rootfs []snapshot.Mount) []snapshot.Mount {
	if len(rootfs) != 1 || rootfs[0].Type != "overlay" {
		return rootfs
	}
	layer := current()
	// overlay's option syntax has no escapes.
	if layer == "" || strings.ContainsAny(layer, ":,=") {
		return rootfs
	}
	m := rootfs[0]
	for i, o := range m.Options {
		if lower, ok := strings.CutPrefix(o, "lowerdir="); ok {
			if !fits(m.Options, lower, layer) {
				return rootfs
			}
			m.Options = append(append(append([]string(nil), m.Options[:i]...), "lowerdir="+lower+":"+layer), m.Options[i+1:]...)
			return []snapshot.Mount{m}
		}
	}
	return rootfs
}

// maxLowers is overlay's limit on lower layers (OVL_MAX_STACK).
const maxLowers = 500

// fits says whether the overlay with options, whose lowerdir is lower,
// takes one more lower layer: the kernel refuses more than maxLowers of
// them, and mount(2) passes the options in one page, NUL included.
// Without the layer the init makes the mountpoints as before.
func fits(options []string, lower, layer string) bool {
	data := len(strings.Join(options, ","))
	return data+len(":"+layer) < os.Getpagesize()-1 && strings.Count(lower, ":")+1 < maxLowers
}

// Tidy removes from upper, the upper directory of rootfs (as it was before
// Add), the layer's directories that overlay copied up only because the
// layer supplied them: a mountpoint the init made beneath /etc of an image
// without /etc (RUN --mount=target=/etc/ssl/certs FROM scratch) copies
// etc/ up, and removing the init's stubs leaves it. Without the layer the
// init would have made etc/ too, as a stub, and removed it. A directory
// is removed only when empty, not opaque, as the layer has it (mode and
// owner: the step did not chmod it) and in no lower layer of the image.
func Tidy(upper string, rootfs []snapshot.Mount) error {
	added := Add(rootfs)
	if len(rootfs) != 1 || slices.Equal(added[0].Options, rootfs[0].Options) {
		return nil // no layer beneath this rootfs
	}
	var lowers []string
	for _, o := range rootfs[0].Options {
		if l, ok := strings.CutPrefix(o, "lowerdir="); ok {
			lowers = strings.Split(l, ":")
		}
	}
	for i := len(entries) - 1; i >= 0; i-- { // children first
		e := entries[i]
		if !strings.HasSuffix(e, "/") || inLowers(lowers, e) {
			continue
		}
		p := filepath.Join(upper, e)
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o7777 != 0o755 ||
			int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() || opaque(p) {
			continue
		}
		if err := unix.Rmdir(p); err != nil && err != unix.ENOTEMPTY && err != unix.EEXIST && err != unix.ENOENT {
			return fmt.Errorf("removing %s, copied up from the layer of mountpoints, from the upper dir: %w", e, err)
		}
	}
	return nil
}

// inLowers says whether any of the image's lower layers has e (or hides
// it: a whiteout is there too).
func inLowers(lowers []string, e string) bool {
	for _, l := range lowers {
		if _, err := os.Lstat(filepath.Join(l, e)); err == nil {
			return true
		}
	}
	return false
}

// opaque says whether overlay marked directory p opaque (trusted.* as
// root, user.* with userxattr in a user namespace).
func opaque(p string) bool {
	buf := make([]byte, 4)
	for _, x := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if n, err := unix.Lgetxattr(p, x, buf); err == nil && n > 0 {
			return true
		}
	}
	return false
}

// RemoveStubs removes, newest first, the mountpoints the init created, from
// the overlay upper directory, if they are still an empty directory or an
// empty regular file there. It never follows symlinks and never removes
// anything else.
func RemoveStubs(upper string, stubs []string) error {
	var errs []error
	for i := len(stubs) - 1; i >= 0; i-- {
		rel := filepath.Clean("/" + stubs[i])
		if rel == "/" {
			continue
		}
		p := filepath.Join(upper, rel)
		// A symlink anywhere in the path (the process may have made one)
		// makes the secure join differ: leave it alone.
		if sp, err := securejoin.SecureJoin(upper, rel); err != nil || sp != p {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		switch {
		case fi.IsDir():
			err = unix.Rmdir(p) // fails, harmlessly, unless empty
			if err == unix.ENOTEMPTY || err == unix.EEXIST {
				err = nil
			}
		case fi.Mode().IsRegular() && fi.Size() == 0:
			err = unix.Unlink(p)
		}
		if err != nil && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("removing mountpoint stub %s from upper dir: %w", strings.TrimPrefix(rel, "/"), err))
		}
	}
	return errors.Join(errs...)
}
