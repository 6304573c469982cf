package seccomp

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// call is one syscall as the filter sees it.
type call struct {
	abi  specs.Arch
	nr   uint32 // with the ABI's base bit
	args [6]uint64
}

// sys builds a call by name; it fails the test if abi has no such syscall.
func sys(t testing.TB, a specs.Arch, name string, args ...uint64) call {
	t.Helper()
	byName, _ := mustABI(a).syscalls()
	n, ok := byName[name]
	if !ok {
		t.Fatalf("%s has no syscall %s", a, name)
	}
	c := call{abi: a, nr: mustABI(a).base | uint32(n)}
	copy(c.args[:], args)
	return c
}

// runFilter evaluates prog on c in x/net/bpf's VM. The VM loads words
// big-endian, so each 32-bit field of seccomp_data is laid out big-endian
// at the offset the kernel would give it.
func runFilter(t testing.TB, prog []bpf.RawInstruction, auditArch uint32, c call) uint32 {
	t.Helper()
	var insts []bpf.Instruction
	for _, r := range prog {
		insts = append(insts, r.Disassemble())
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatalf("bpf.NewVM: %v", err)
	}
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[offsetNr:], c.nr)
	binary.BigEndian.PutUint32(data[offsetArch:], auditArch)
	for i, v := range c.args {
		lo, hi := argOffsets(uint(i))
		binary.BigEndian.PutUint32(data[lo:], uint32(v))
		binary.BigEndian.PutUint32(data[hi:], uint32(v>>32))
	}
	ret, err := vm.Run(data)
	if err != nil {
		t.Fatalf("running filter: %v", err)
	}
	return uint32(ret)
}

func auditArch(a specs.Arch) uint32 { return mustABI(a).audit }

// holds is the reference semantics of an argument condition.
func holds(c specs.LinuxSeccompArg, v uint64, bits int) bool {
	want, arg := c.Value, v
	if bits == 32 {
		want, arg = uint64(uint32(want)), uint64(uint32(arg))
	}
	switch c.Op {
	case specs.OpEqualTo:
		return arg == want
	case specs.OpNotEqual:
		return arg != want
	case specs.OpGreaterThan:
		return arg > want
	case specs.OpGreaterEqual:
		return arg >= want
	case specs.OpLessThan:
		return arg < want
	case specs.OpLessEqual:
		return arg <= want
	case specs.OpMaskedEqual:
		two := c.ValueTwo
		if bits == 32 {
			two = uint64(uint32(two))
		}
		return arg&want == two
	}
	panic(c.Op)
}

// TestCompileConditions checks every operator on a 64-bit and a 32-bit
// ABI against the reference, with values at and around the boundaries.
func TestCompileConditions(t *testing.T) {
	ops := []specs.LinuxSeccompOperator{
		specs.OpEqualTo, specs.OpNotEqual, specs.OpGreaterThan, specs.OpGreaterEqual,
		specs.OpLessThan, specs.OpLessEqual, specs.OpMaskedEqual,
	}
	values := []uint64{0, 1, 0x7fffffff, 0xffffffff, 0x100000000, 0x1_00000005, 0xffffffff_ffffffff, 0x5_00000000}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		values = append(values, rng.Uint64(), uint64(rng.Uint32()))
	}
	for _, a := range []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchAARCH64, specs.ArchARM} {
		for _, op := range ops {
			for _, val := range values {
				cond := specs.LinuxSeccompArg{Index: 2, Value: val, ValueTwo: val & 0xf0f0f0f0_f0f0f0f0, Op: op}
				p := &specs.LinuxSeccomp{
					DefaultAction: specs.ActErrno,
					Architectures: []specs.Arch{a},
					Syscalls: []specs.LinuxSyscall{
						{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{cond}},
					},
				}
				prog, err := Compile(p)
				if err != nil {
					t.Fatalf("Compile(%s %s) = %v", a, op, err)
				}
				for _, arg := range append(values, val-1, val+1, val^1<<32) {
					c := sys(t, a, "read", 0, 0, arg)
					got := runFilter(t, prog, auditArch(a), c) == retAllow
					if want := holds(cond, arg, mustABI(a).bits); got != want {
						t.Errorf("%s: read(_, _, %#x) with %s %#x (two %#x): allowed = %v, want %v",
							a, arg, op, val, cond.ValueTwo, got, want)
					}
				}
			}
		}
	}
}

func TestCompileRulesAndLayout(t *testing.T) {
	one := uint(1)
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "socketcall", "no_such_syscall"}, Action: specs.ActAllow},
			// Two rules for one syscall are ORed; conditions of one rule ANDed.
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 100, Op: specs.OpGreaterThan}, {Index: 1, Value: 7, Op: specs.OpEqualTo}}},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &[]uint{errnoENOSYS}[0]},
			{Names: []string{"kill"}, Action: specs.ActErrno, ErrnoRet: &one},
		},
	}
	prog, err := Compile(p)
	if err != nil {
		t.Fatalf("Compile = %v", err)
	}
	x86 := auditArch(specs.ArchX86_64)
	eperm, enosys := uint32(retErrno|errnoEPERM), uint32(retErrno|errnoENOSYS)
	for _, tc := range []struct {
		arch uint32
		c    call
		want uint32
	}{
		{x86, sys(t, specs.ArchX86_64, "read"), retAllow},
		{x86, sys(t, specs.ArchX86_64, "write"), retAllow},
		{x86, sys(t, specs.ArchX86_64, "mount"), eperm},
		{x86, sys(t, specs.ArchX86_64, "clone3"), enosys},
		{x86, sys(t, specs.ArchX86_64, "kill"), retErrno | 1},
		{x86, sys(t, specs.ArchX86_64, "personality", 8), retAllow},
		{x86, sys(t, specs.ArchX86_64, "personality", 9), eperm},
		{x86, sys(t, specs.ArchX86_64, "personality", 101, 7), retAllow},
		{x86, sys(t, specs.ArchX86_64, "personality", 101, 6), eperm},
		{x86, sys(t, specs.ArchX86_64, "personality", 100, 7), eperm},
		{x86, call{nr: 5000}, enosys},                  // past the table
		{x86, call{nr: 0x3fffffff}, enosys},            // up to the x32 bit
		{x86, sys(t, specs.ArchX32, "read"), retAllow}, // x32
		{x86, sys(t, specs.ArchX32, "mount"), eperm},   // x32
		{x86, call{nr: x32SyscallBit | 5000}, enosys},  // x32, past the table
		{x86, call{nr: 0xffffffff}, enosys},            // -1
		{auditArch(specs.ArchX86), sys(t, specs.ArchX86, "socketcall"), retAllow},
		{auditArch(specs.ArchX86), sys(t, specs.ArchX86, "read"), retAllow},
		{auditArch(specs.ArchX86), sys(t, specs.ArchX86, "mount"), eperm},
		{auditArch(specs.ArchAARCH64), sys(t, specs.ArchAARCH64, "read"), retKillProcess}, // foreign arch
	} {
		if got := runFilter(t, prog, tc.arch, tc.c); got != tc.want {
			t.Errorf("arch %#x nr %#x args %v: filter returns %#x, want %#x", tc.arch, tc.c.nr, tc.c.args[:2], got, tc.want)
		}
	}

	// Without x32 in the profile, x32 calls are a foreign ABI.
	p.Architectures = []specs.Arch{specs.ArchX86_64}
	if prog, err = Compile(p); err != nil {
		t.Fatalf("Compile(x86_64 only) = %v", err)
	}
	if got := runFilter(t, prog, x86, sys(t, specs.ArchX32, "read")); got != retKillProcess {
		t.Errorf("x86_64-only filter, x32 read: %#x, want kill", got)
	}
}

func TestCompileErrors(t *testing.T) {
	ok := specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActAllow}
	for _, tc := range []struct {
		name string
		p    specs.LinuxSeccomp
	}{
		{"no arches", specs.LinuxSeccomp{DefaultAction: specs.ActErrno}},
		{"unknown arch", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchS390X}}},
		{"notify", specs.LinuxSeccomp{DefaultAction: specs.ActNotify, Architectures: []specs.Arch{specs.ArchX86_64}}},
		{"conflict", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls: []specs.LinuxSyscall{ok, {Names: []string{"read"}, Action: specs.ActKill}}}},
		{"mixed", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls: []specs.LinuxSyscall{ok, {Names: []string{"read"}, Action: specs.ActKill, Args: []specs.LinuxSeccompArg{{Op: specs.OpEqualTo}}}}}},
		{"arg index", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}},
	} {
		if _, err := Compile(&tc.p); err == nil {
			t.Errorf("Compile(%s) succeeded, want an error", tc.name)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	prog := []bpf.RawInstruction{{Op: 6, Jt: 1, Jf: 2, K: 0x7fff0000}, {Op: 0x20, K: 4}}
	got, err := Decode(Encode(prog))
	if err != nil || fmt.Sprint(got) != fmt.Sprint(prog) {
		t.Errorf("Decode(Encode(%v)) = %v, %v", prog, got, err)
	}
	for _, b := range [][]byte{nil, make([]byte, 7), make([]byte, 8*4097)} {
		if _, err := Decode(b); err == nil {
			t.Errorf("Decode(%d bytes) succeeded", len(b))
		}
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func mustABI(a specs.Arch) abi {
	x, ok := abiOf(a)
	if !ok {
		panic(a)
	}
	return x
}
