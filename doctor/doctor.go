// Package doctor checks whether this host can run builds, rootful and
// rootless, and says how to fix what is missing: user namespaces,
// subordinate id ranges, overlay (also inside a user namespace), cgroups
// (v1, v2 or hybrid, and delegation), seccomp, the user-mode network helper,
// and the QEMU emulators registered in binfmt_misc for other platforms.
//
// Every check reads the host through Host, so that tests can point it at
// a fake /proc, /sys and /etc; the probes that must really create a
// namespace or mount run only against the real host.
package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Status is the outcome of one check.
type Status string

const (
	// OK: builds can use it.
	OK Status = "ok"
	// Warn: builds work, with less (isolation, speed, platforms) than
	// they could have.
	Warn Status = "warn"
	// Fail: builds of that kind (rootless, or with limits) cannot run.
	Fail Status = "fail"
)

// Check is one finding.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Report is the result of Run.
type Report struct {
	Checks []Check `json:"checks"`
}

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// WriteText writes one line per check, and the fix beneath it.
func (r Report) WriteText(w io.Writer) error {
	for _, c := range r.Checks {
		if _, err := fmt.Fprintf(w, "%-5s %-16s %s\n", strings.ToUpper(string(c.Status)), c.Name, c.Detail); err != nil {
			return err
		}
		if c.Fix != "" {
			if _, err := fmt.Fprintf(w, "      %-16s fix: %s\n", "", c.Fix); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteJSON writes the report as one JSON object.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
