// Package initbin keeps the path of the program that the executor starts
// as the sandbox init (and as the holder of a shared network namespace):
// a small binary written into the state directory, or this process's own.
package initbin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/builder-dev/builder/executor/mountpoints"
)

// initBinary is the program the executor starts as the sandbox init: "" means this
// process's own binary (/proc/self/exe), which calls Init first thing.
var initBinary atomic.Value // string

// Use makes the executor start the sandbox init from a small separate
// binary instead of re-executing this (large) one: starting a process
// costs in proportion to what it maps and initialises, so a binary of the
// executor alone starts several times faster. The binary (cmd/builder-init:
// a main that only calls Init) is written content-addressed into dir once,
// and used from there. sum is the binary's sha256 in hex, computed when it
// was embedded; "" has it computed here, which reads all of binary. With
// sum given, a file of the right name and size is taken as it is: a no-op
// rebuild, which runs no step, pays a stat. dir also keeps the layer of
// mountpoints that executor.Run puts beneath an overlay rootfs (package mountpoints).
func Use(dir string, binary []byte, sum string) (string, error) {
	mountpoints.Use(dir)
	if len(sum) < 24 {
		h := sha256.Sum256(binary)
		sum = hex.EncodeToString(h[:])
	}
	path := filepath.Join(dir, "init-"+sum[:24])
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(len(binary)) && fi.Mode().Perm()&0o100 != 0 {
		initBinary.Store(path)
		return path, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("sandbox init binary: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("writing sandbox init binary: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".init-*")
	if err != nil {
		return "", fmt.Errorf("writing sandbox init binary: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(binary); err == nil {
		err = tmp.Chmod(0o755)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("writing sandbox init binary: %w", err)
	}
	initBinary.Store(path)
	return path, nil
}

// Path is the program the executor starts.
func Path() string {
	if p, _ := initBinary.Load().(string); p != "" {
		return p
	}
	return "/proc/self/exe"
}
