//go:build linux

package platform

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ReadEmulator reads binfmt_misc entry name under dir (BinfmtDir). An
// entry that does not exist is Registered false; a binfmt_misc that is not
// mounted is an error saying so.
func ReadEmulator(dir, name string) (Emulator, error) {
	e := Emulator{Name: name}
	if _, err := os.Stat(filepath.Join(dir, "register")); err != nil {
		return e, fmt.Errorf("binfmt_misc is not mounted on %s", dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return e, nil
	}
	if err != nil {
		return e, fmt.Errorf("reading binfmt_misc entry: %w", err)
	}
	e.Registered = true
	for line := range strings.SplitSeq(string(b), "\n") {
		switch k, v, _ := strings.Cut(line, " "); k {
		case "enabled":
			e.Enabled = true
		case "interpreter":
			e.Interpreter = v
		case "flags:":
			e.Flags = v
		}
	}
	return e, nil
}
