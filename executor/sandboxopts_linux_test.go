package executor_test

import (
	"testing"

	"github.com/builder-dev/builder/executor"
)

// TestExtraHostsShmUlimits: Spec.ExtraHosts reach /etc/hosts, ShmSize sizes
// /dev/shm and Ulimits are the process's limits (build --add-host,
// --shm-size, --ulimit).
func TestExtraHostsShmUlimits(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	spec := s.spec("sh", "-c", "grep -c db.example /etc/hosts; grep fd00::1 /etc/hosts; df -k /dev/shm | tail -1 | awk '{print $2}'; ulimit -Sn; ulimit -Hn")
	spec.ExtraHosts = []executor.HostIP{{Host: "db.example", IP: "10.1.2.3"}, {Host: "v6.example", IP: "fd00::1"}}
	spec.ShmSize = 32 << 20
	spec.Ulimits = []executor.Ulimit{{Name: "nofile", Soft: 512, Hard: 1024}}
	if got, want := mustRun(t, spec), "1\nfd00::1\tv6.example\n32768\n512\n1024"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	spec = s.spec("true")
	spec.Ulimits = []executor.Ulimit{{Name: "nosuch", Soft: 1, Hard: 1}}
	if err := executor.Run(t.Context(), spec); err == nil {
		t.Error("an unknown ulimit name: no error")
	}
}
