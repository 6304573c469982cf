package buildopts

import (
	"strings"
	"testing"

	"github.com/builder-dev/builder/executor/cgroup"
)

func TestResourceFlags(t *testing.T) {
	tests := []struct {
		f       Resources
		want    cgroup.Limits
		wantErr string
	}{
		{Resources{}, cgroup.Limits{}, ""},
		{Resources{memory: "64m", memorySwap: "-1", cpus: 0.5, cpuShares: 512, pidsLimit: 64},
			cgroup.Limits{Memory: 64 << 20, MemorySwap: -1, CPUs: 0.5, CPUShares: 512, PidsLimit: 64}, ""},
		{Resources{memory: "1g", memorySwap: "2g"}, cgroup.Limits{Memory: 1 << 30, MemorySwap: 2 << 30}, ""},
		{Resources{memory: "lots"}, cgroup.Limits{}, "--memory lots"},
		{Resources{memorySwap: "1g"}, cgroup.Limits{}, "needs --memory"},
		{Resources{memory: "1m"}, cgroup.Limits{}, "minimum is 6 MiB"},
	}
	for _, tt := range tests {
		got, err := tt.f.Limits()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%+v.limits() error = %v, want %q", tt.f, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%+v.limits() = %+v, %v; want %+v", tt.f, got, err, tt.want)
		}
	}
}
