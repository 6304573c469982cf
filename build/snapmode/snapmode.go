// Package snapmode chooses how a state directory stores layers: overlay where
// the kernel and filesystem allow it, else the copy-based snapshotter. The
// probe's outcome is cached in the state dir per kernel and mode.
package snapmode

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/builder-dev/builder/snapshot"
)

// Env forces the snapshotter mode: "overlay" or "copy". Unset
// (or "auto"), Open probes whether overlay works on the state directory's
// filesystem and falls back to the copy mode if not.
const Env = "BUILDER_SNAPSHOTTER"

// probeFile caches the outcome of the overlay probe in the state dir.
const probeFile = "overlay-probe.json"

type probeResult struct {
	Kernel    string `json:"kernel"`
	UserXattr bool   `json:"userXattr"`
	Error     string `json:"error,omitempty"`
}

// CopyMode decides whether the snapshotter of the state dir at root
// uses the copy mode, and says so through warn when it does.
func CopyMode(root, tmp string, userXattr bool, warn func(string)) (bool, error) {
	switch v := os.Getenv(Env); v {
	case "overlay":
		return false, nil
	case "copy":
		warn(fmt.Sprintf("%s=copy: using the slower copy-based snapshotter", Env))
		return true, nil
	case "", "auto":
	default:
		return false, fmt.Errorf("%s=%q: want overlay, copy or auto", Env, v)
	}
	snaps := filepath.Join(root, "snapshots")
	probeErr := cachedProbe(root, tmp, userXattr)
	if probeErr == "" {
		return false, nil
	}
	warn(fmt.Sprintf("overlayfs is not usable on %s (%s); using the slower copy-based snapshotter", snaps, probeErr))
	return true, nil
}

// cachedProbe returns the overlay probe's error ("" when overlay works),
// from the cache file when it was written under the same kernel and mode.
func cachedProbe(root, tmp string, userXattr bool) string {
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	path := filepath.Join(root, probeFile)
	if b, err := os.ReadFile(path); err == nil {
		var r probeResult
		if json.Unmarshal(b, &r) == nil && r.Kernel == kernel && r.UserXattr == userXattr && kernel != "" {
			return r.Error
		}
	}
	r := probeResult{Kernel: kernel, UserXattr: userXattr}
	if err := snapshot.ProbeOverlay(context.Background(), tmp, userXattr); err != nil {
		r.Error = err.Error()
	}
	if b, err := json.Marshal(r); err == nil {
		// Best effort: without the cache the next Open probes again.
		tmpFile := path + ".tmp"
		if os.WriteFile(tmpFile, b, 0o600) == nil {
			_ = os.Rename(tmpFile, path)
		}
	}
	return r.Error
}
