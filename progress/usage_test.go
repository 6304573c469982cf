package progress

import (
	"testing"

	"github.com/builder-dev/builder/solver"
)

func TestUsageSuffix(t *testing.T) {
	if got := usageSuffix(nil); got != "" {
		t.Errorf("usageSuffix(nil) = %q", got)
	}
	u := &solver.Usage{CPU: 1250e6, PeakMemory: 3 << 29, ReadBytes: 2048, WriteBytes: 10 << 20}
	if got, want := usageSuffix(u), " (cpu 1.2s, peak 1.5GiB, read 2KiB, wrote 10MiB)"; got != want {
		t.Errorf("usageSuffix = %q, want %q", got, want)
	}
}
