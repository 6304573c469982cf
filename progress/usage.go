package progress

import (
	"fmt"
	"strings"

	"github.com/builder-dev/builder/solver"
	"github.com/docker/go-units"
)

// usageSuffix is what a step's processes used, for its DONE line:
// " (cpu 5.9s, peak 412 MiB)", with bytes read and written when there were
// any; empty when nothing was measured.
func usageSuffix(u *solver.Usage) string {
	if u == nil {
		return ""
	}
	parts := []string{fmt.Sprintf("cpu %.1fs", u.CPU.Seconds())}
	if u.PeakMemory > 0 {
		parts = append(parts, "peak "+units.BytesSize(float64(u.PeakMemory)))
	}
	if u.ReadBytes > 0 {
		parts = append(parts, "read "+units.BytesSize(float64(u.ReadBytes)))
	}
	if u.WriteBytes > 0 {
		parts = append(parts, "wrote "+units.BytesSize(float64(u.WriteBytes)))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
