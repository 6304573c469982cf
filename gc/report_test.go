package gc

import (
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache/gcplan"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30m": 30 * time.Minute, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "1.5d": 36 * time.Hour} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1h", "-2d", "d"} {
		if d, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, d)
		}
	}
}

func TestWriteDiskUsage(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	du := &gcplan.DiskUsage{
		Records: []gcplan.UsageRecord{
			{ID: "sha256:0123456789abcdef0123", Blob: true, Size: 2048, LastUsed: now.Add(-90 * time.Minute), InUse: true, Description: "config"},
			{ID: "snap1", Size: 1, LastUsed: now.Add(-72 * time.Hour), Shared: true, Parent: "snap0"},
			{ID: "snap2", Size: 5},
		},
		Total: 2054, InUse: 2048, Reclaimable: 6,
	}
	var b strings.Builder
	if err := WriteDiskUsage(&b, du, false, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"0123456789ab ", "2.05kB", "1 hour ago", "image", "3 days ago", "shared", "snap2", "Total:\t\t2.05kB", "Reclaimable:\t6B"} {
		if !strings.Contains(out, want) {
			t.Errorf("du table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := WriteDiskUsage(&b, du, true, now); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "sha256:0123456789abcdef0123") || !strings.Contains(out, "snap0") || !strings.Contains(out, "PARENT") {
		t.Errorf("verbose du table lacks the full id, the parent or the PARENT column:\n%s", out)
	}
}

func TestPruneReportSummary(t *testing.T) {
	rep := &PruneReport{Snapshots: 1, Keys: 2, Blobs: 0, Kept: 1, Freed: 1500}
	if got, want := rep.Summary(), "1 kept failure, 1 layer, 2 cache records and 0 blobs"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	if got := rep.Done(); !strings.Contains(got, "Total reclaimed space: 1.5kB") {
		t.Errorf("Done() = %q", got)
	}
	if rep.Empty() || !(&PruneReport{}).Empty() {
		t.Error("Empty() is wrong")
	}
}
