package cgroup

import (
	"strings"
	"testing"
)

func TestLimitsValidate(t *testing.T) {
	for _, c := range []struct {
		l       Limits
		wantErr string
	}{
		{Limits{}, ""},
		{Limits{Memory: 64 << 20, MemorySwap: -1, CPUs: 0.5, CPUShares: 512, PidsLimit: 64}, ""},
		{Limits{PidsLimit: -1}, ""},
		{Limits{Memory: 1 << 20}, "minimum is 6 MiB"},
		{Limits{MemorySwap: 128 << 20}, "--memory-swap needs --memory"},
		{Limits{Memory: 64 << 20, MemorySwap: 32 << 20}, "at least --memory"},
		{Limits{CPUs: -1}, "--cpus"},
		{Limits{CPUs: 0.001}, "minimum is 0.01"},
		{Limits{CPUs: 1e6}, "this machine has"},
		{Limits{CPUShares: 1}, "--cpu-shares"},
		{Limits{PidsLimit: -2}, "--pids-limit"},
	} {
		err := c.l.Validate()
		if (err == nil) != (c.wantErr == "") || err != nil && !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%+v.Validate() = %v, want %q", c.l, err, c.wantErr)
		}
	}
}

func TestRequestedAndDefaults(t *testing.T) {
	if (Limits{}).Requested() || (Limits{PidsLimit: -1}).Requested() {
		t.Error("no limit counts as requested")
	}
	if !(Limits{PidsLimit: 10}).Requested() || !(Limits{CPUs: 1}).Requested() {
		t.Error("an explicit limit does not count as requested")
	}
	if got := (Limits{}).pids(); got != DefaultPidsLimit {
		t.Errorf("default pids limit %d, want %d", got, DefaultPidsLimit)
	}
	if got := (Limits{PidsLimit: -1}).pids(); got != 0 {
		t.Errorf("unlimited pids wrote %d", got)
	}
	if got := (Limits{Memory: 100}).memorySwap(); got != 200 {
		t.Errorf("default memory+swap %d, want twice the memory as in Docker", got)
	}
}
