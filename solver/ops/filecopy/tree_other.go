//go:build !linux

package filecopy

import (
	"fmt"
	"runtime"

	"github.com/builder-dev/builder/llb"
)

// The copy works through directory descriptors and *at system calls
// (tree_linux.go).
var errUnsupported = fmt.Errorf("COPY is not supported on %s", runtime.GOOS)

func (c *copier) copyDirInto(src, rel, into string, fresh bool) error { return errUnsupported }

func (c *copier) copyFile(src, rel, target string) error { return errUnsupported }

func (c *copier) writeInline(f llb.InlineFile, rel string) error { return errUnsupported }
