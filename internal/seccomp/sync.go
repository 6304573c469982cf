package seccomp

import (
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// SyncCalls only make data that was already written durable. msync is not
// among them: programs also call it to ask whether an address is mapped.
var SyncCalls = []string{"fsync", "fdatasync", "sync_file_range", "sync_file_range2", "syncfs"}

// ElideSync returns a copy of p under which SyncCalls succeed without
// running (SECCOMP_RET_ERRNO with errno 0 returns 0). Package managers
// call fsync thousands of times per step; a step's layer is made durable
// once instead, by a syncfs of the snapshots' file system (snapshot's
// Sync, see solver/ops/durable) before a cache record names it, so a host
// crash loses nothing the cache trusts.
func ElideSync(p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	q := *p
	q.Syscalls = make([]specs.LinuxSyscall, 0, len(p.Syscalls)+1)
	for _, r := range p.Syscalls {
		// The profile allows them; Compile refuses two unconditional rules.
		r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return slices.Contains(SyncCalls, n) })
		if len(r.Names) > 0 {
			q.Syscalls = append(q.Syscalls, r)
		}
	}
	success := uint(0)
	q.Syscalls = append(q.Syscalls, specs.LinuxSyscall{Names: SyncCalls, Action: specs.ActErrno, ErrnoRet: &success})
	return &q
}
