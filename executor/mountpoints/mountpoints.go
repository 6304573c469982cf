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
	"strings"
	"sync"

	"github.com/builder-dev/builder/snapshot"
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

// makeLayer makes dir/mountpoints-1 if missing (built aside and
// renamed into place, so that concurrent builder processes agree) and
// checks that it holds the entries and nothing is a symlink.
func makeLayer(dir string) (string, error) {
	layer := filepath.Join(dir, "mountpoints-1")
	if checkLayer(layer) == nil {
		return layer, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
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
		if err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, layer); err != nil && !errors.Is(err, fs.ErrExist) { // ErrExist: also ENOTEMPTY, another process won
		return "", err
	}
	return layer, checkLayer(layer)
}

// checkLayer checks layer's entries: plain directories and empty
// regular files.
func checkLayer(layer string) error {
	for _, e := range append([]string{""}, entries...) {
		fi, err := os.Lstat(filepath.Join(layer, e))
		if err != nil {
			return err
		}
		dir := e == "" || strings.HasSuffix(e, "/")
		if dir != fi.IsDir() || !dir && (!fi.Mode().IsRegular() || fi.Size() != 0) {
			return fmt.Errorf("mountpoint layer %s: unexpected %s", layer, e)
		}
	}
	return nil
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
			m.Options = append(append(append([]string(nil), m.Options[:i]...), "lowerdir="+lower+":"+layer), m.Options[i+1:]...)
			return []snapshot.Mount{m}
		}
	}
	return rootfs
}
