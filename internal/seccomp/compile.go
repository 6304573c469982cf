package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// Return values of a seccomp filter (linux/seccomp.h). They are spelled
// out here so that the compiler builds on every OS.
const (
	retKillProcess = 0x80000000
	retKillThread  = 0x00000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000

	errnoEPERM  = 1
	errnoENOSYS = 38

	// x32SyscallBit marks the x32 ABI's syscall numbers, which share
	// x86_64's audit arch.
	x32SyscallBit = 0x40000000

	// AUDIT_ARCH_* (linux/audit.h): seccomp_data.arch.
	auditArchX86_64  = 0xc000003e
	auditArchI386    = 0x40000003
	auditArchAARCH64 = 0xc00000b7
	auditArchARM     = 0x40000028
)

// Offsets in struct seccomp_data: nr, arch, instruction_pointer, args[6].
const (
	offsetNr   = 0
	offsetArch = 4
	offsetArgs = 16
)

// abi is one syscall ABI a filter admits.
type abi struct {
	// table is its syscalls, "number name" pairs (ztables.go).
	table string
	audit uint32
	// base is ORed into every syscall number (x32's bit).
	base uint32
	// bits is 64 or 32: how much of an argument the ABI passes.
	bits int
}

// abiOf maps a profile's architecture name to its syscall table. (A
// switch, not a map: every sandbox init links this package, and a map
// would be built at each start.)
func abiOf(a specs.Arch) (abi, bool) {
	switch a {
	case specs.ArchX86_64:
		return abi{table: tableX86_64, audit: auditArchX86_64, bits: 64}, true
	case specs.ArchX32:
		return abi{table: tableX32, audit: auditArchX86_64, base: x32SyscallBit, bits: 32}, true
	case specs.ArchX86:
		return abi{table: tableI386, audit: auditArchI386, bits: 32}, true
	case specs.ArchAARCH64:
		return abi{table: tableAARCH64, audit: auditArchAARCH64, bits: 64}, true
	case specs.ArchARM:
		return abi{table: tableARM, audit: auditArchARM, bits: 32}, true
	}
	return abi{}, false
}

// syscalls parses the ABI's table (without the base bit). A name listed
// twice (x32 has x86_64's 64-bit-only numbers as well as its own, from
// 512) means the higher number, the ABI's own.
func (a abi) syscalls() (byName map[string]uint32, byNr map[uint32]string) {
	key := [2]uint32{a.audit, a.base}
	if t, ok := parsedTables.Load(key); ok {
		t := t.(*parsedTable)
		return t.byName, t.byNr
	}
	f := strings.Fields(a.table)
	byName, byNr = make(map[string]uint32, len(f)/2), make(map[uint32]string, len(f)/2)
	for i := 0; i+1 < len(f); i += 2 {
		n, err := strconv.ParseUint(f[i], 10, 32)
		if err != nil {
			panic("seccomp: bad syscall table entry " + f[i] + " " + f[i+1])
		}
		byName[f[i+1]], byNr[uint32(n)] = uint32(n), f[i+1]
	}
	parsedTables.Store(key, &parsedTable{byName, byNr})
	return byName, byNr
}

// parsedTables caches abi.syscalls by audit arch and base; the maps are
// only read once stored.
var parsedTables sync.Map

type parsedTable struct {
	byName map[string]uint32
	byNr   map[uint32]string
}

// Compile turns a resolved profile into a classic BPF seccomp program for
// its architectures; a call from any other architecture kills the
// process. Syscall names that an architecture does not have are skipped
// there, as runc does.
func Compile(p *specs.LinuxSeccomp) ([]bpf.RawInstruction, error) {
	if len(p.Architectures) == 0 {
		return nil, errors.New("seccomp profile lists no architectures")
	}
	if len(p.Flags) > 0 || p.ListenerPath != "" {
		return nil, fmt.Errorf("seccomp profile: flags %v and listeners are not supported", p.Flags)
	}
	def, err := action(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile default action: %w", err)
	}
	// x86_64 and x32 share an audit arch: one section holds both.
	var auditArches []uint32
	sections := map[uint32][]segment{}
	for i, name := range p.Architectures {
		if slices.Contains(p.Architectures[:i], name) {
			continue
		}
		a, ok := abiOf(name)
		if !ok {
			return nil, fmt.Errorf("seccomp profile: architecture %s is not supported", name)
		}
		segs, err := a.segments(p.Syscalls, def)
		if err != nil {
			return nil, fmt.Errorf("seccomp profile, %s: %w", name, err)
		}
		id := a.audit
		if _, seen := sections[id]; !seen {
			auditArches = append(auditArches, id)
		}
		sections[id] = append(sections[id], segs...)
	}

	// ld arch; for each arch: jeq arch -> its section; else kill.
	prog := []bpf.Instruction{bpf.LoadAbsolute{Off: offsetArch, Size: 4}}
	var bodies [][]bpf.Instruction
	for _, id := range auditArches {
		segs := sections[id]
		slices.SortFunc(segs, func(a, b segment) int { return cmpUint32(a.start, b.start) })
		if segs[0].start != 0 {
			// x32 without x86_64: numbers below its bit are foreign.
			segs = append([]segment{{start: 0, code: ret(retKillProcess)}}, segs...)
		}
		if id == auditArchX86_64 && segs[len(segs)-1].start < x32SyscallBit {
			// x86_64 without x32: x32 numbers are a foreign ABI.
			segs = append(segs, segment{start: x32SyscallBit, code: ret(retKillProcess)})
		}
		body := append([]bpf.Instruction{bpf.LoadAbsolute{Off: offsetNr, Size: 4}}, tree(merge(segs))...)
		bodies = append(bodies, body)
	}
	// Dispatch: two instructions per arch, then the kill, then the bodies.
	skip := 2*(len(auditArches)-1) + 1 // from the first ja to the first body
	for i, id := range auditArches {
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: id, SkipTrue: 0, SkipFalse: 1},
			bpf.Jump{Skip: uint32(skip)})
		skip += len(bodies[i]) - 2
	}
	prog = append(prog, ret(retKillProcess)...)
	for _, b := range bodies {
		prog = append(prog, b...)
	}
	if len(prog) > 4096 {
		return nil, fmt.Errorf("seccomp program has %d instructions, more than the kernel's 4096", len(prog))
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("assembling seccomp program: %w", err)
	}
	return raw, nil
}

// segment is the code for syscall numbers from start up to the next
// segment's start.
type segment struct {
	start uint32
	code  []bpf.Instruction
}

// segments returns the code for every syscall number of the ABI: the
// profile's rules where it has some, def for other known numbers, and
// ENOSYS for numbers the table does not know.
func (a abi) segments(rules []specs.LinuxSyscall, def uint32) ([]segment, error) {
	type entry struct {
		uncond *uint32 // an unconditional action, or nil
		rules  []specs.LinuxSyscall
	}
	byName, names := a.syscalls()
	entries := map[uint32]*entry{}
	for _, r := range rules {
		act, err := action(r.Action, r.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("rule for %v: %w", r.Names, err)
		}
		for _, name := range r.Names {
			n, ok := byName[name]
			if !ok {
				continue
			}
			e := entries[n]
			if e == nil {
				e = &entry{}
				entries[n] = e
			}
			if len(r.Args) == 0 {
				if e.uncond != nil && *e.uncond != act {
					return nil, fmt.Errorf("syscall %s has conflicting unconditional rules", name)
				}
				e.uncond = &act
			} else {
				e.rules = append(e.rules, r)
			}
		}
	}
	nrs := make([]uint32, 0, len(names))
	for n := range names {
		nrs = append(nrs, n)
	}
	slices.Sort(nrs)
	enosys := ret(retErrno | errnoENOSYS)
	var segs []segment
	next := uint32(0) // the number after the previous known one
	for _, n := range nrs {
		if n > next {
			// A hole in the table: no such syscall.
			segs = append(segs, segment{start: a.base | next, code: enosys})
		}
		next = n + 1
		code := ret(def)
		if e := entries[n]; e != nil {
			switch {
			case e.uncond != nil:
				for _, r := range e.rules {
					if act, _ := action(r.Action, r.ErrnoRet); act != *e.uncond {
						return nil, fmt.Errorf("syscall %s has an unconditional rule and a conditional one with another action", names[n])
					}
				}
				code = ret(*e.uncond)
			default:
				var err error
				if code, err = a.conditional(e.rules, def); err != nil {
					return nil, fmt.Errorf("syscall %s: %w", names[n], err)
				}
			}
		}
		segs = append(segs, segment{start: a.base | n, code: code})
	}
	// Numbers past the table: syscalls newer than it, or none.
	segs = append(segs, segment{start: a.base | next, code: enosys})
	return segs, nil
}

// merge joins neighbouring segments whose code is one identical return.
func merge(segs []segment) []segment {
	out := segs[:0:0]
	for _, s := range segs {
		if n := len(out); n > 0 && len(s.code) == 1 && len(out[n-1].code) == 1 && out[n-1].code[0] == s.code[0] {
			continue
		}
		out = append(out, s)
	}
	return out
}

// tree is a binary search over segments on the syscall number in A. A
// conditional jump reaches 255 instructions; farther, it jumps to a ja.
func tree(segs []segment) []bpf.Instruction {
	if len(segs) == 1 {
		return segs[0].code
	}
	mid := len(segs) / 2
	left, right := tree(segs[:mid]), tree(segs[mid:])
	var out []bpf.Instruction
	k := segs[mid].start
	if len(left) <= 255 {
		out = append(out, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: k, SkipTrue: uint8(len(left))})
	} else {
		out = append(out,
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: k, SkipTrue: 0, SkipFalse: 1},
			bpf.Jump{Skip: uint32(len(left))})
	}
	out = append(out, left...)
	return append(out, right...)
}

// conditional is the code for a syscall with argument rules: each rule is
// tried in order, the first whose conditions all hold returns its action,
// and def is returned when none does. It may clobber A.
func (a abi) conditional(rules []specs.LinuxSyscall, def uint32) ([]bpf.Instruction, error) {
	var out []bpf.Instruction
	for _, r := range rules {
		act, err := action(r.Action, r.ErrnoRet)
		if err != nil {
			return nil, err
		}
		var code []asmIns
		for _, c := range r.Args {
			cc, err := a.condition(c)
			if err != nil {
				return nil, err
			}
			code = append(code, cc...)
		}
		code = append(code, asmIns{ins: bpf.RetConstant{Val: act}})
		out = append(out, resolve(code)...)
	}
	return append(out, bpf.RetConstant{Val: def}), nil
}

// asmIns is an instruction of a rule whose jumps may target the end of
// the rule (the next rule), which is known only once the rule is complete.
type asmIns struct {
	ins               bpf.Instruction
	failTrue, failFal bool
}

// resolve points the fail jumps of a rule at its end.
func resolve(code []asmIns) []bpf.Instruction {
	out := make([]bpf.Instruction, len(code))
	for i, c := range code {
		if j, ok := c.ins.(bpf.JumpIf); ok {
			if c.failTrue {
				j.SkipTrue = uint8(len(code) - i - 1)
			}
			if c.failFal {
				j.SkipFalse = uint8(len(code) - i - 1)
			}
			c.ins = j
		}
		out[i] = c.ins
	}
	return out
}

// condition is the check of one argument: it falls through when the
// condition holds and jumps to the end of the rule when it does not.
func (a abi) condition(c specs.LinuxSeccompArg) ([]asmIns, error) {
	if c.Index > 5 {
		return nil, fmt.Errorf("argument index %d out of range", c.Index)
	}
	lo, hi := argOffsets(c.Index)
	vlo, vhi := uint32(c.Value), uint32(c.Value>>32)
	ld := func(off uint32) asmIns { return asmIns{ins: bpf.LoadAbsolute{Off: off, Size: 4}} }
	jmp := func(cond bpf.JumpTest, v uint32, skipTrue, skipFalse uint8, failTrue, failFalse bool) asmIns {
		return asmIns{ins: bpf.JumpIf{Cond: cond, Val: v, SkipTrue: skipTrue, SkipFalse: skipFalse}, failTrue: failTrue, failFal: failFalse}
	}
	// The low word alone: a 32-bit ABI passes nothing more.
	low := map[specs.LinuxSeccompOperator][]asmIns{
		specs.OpEqualTo:      {ld(lo), jmp(bpf.JumpEqual, vlo, 0, 0, false, true)},
		specs.OpNotEqual:     {ld(lo), jmp(bpf.JumpEqual, vlo, 0, 0, true, false)},
		specs.OpGreaterThan:  {ld(lo), jmp(bpf.JumpGreaterThan, vlo, 0, 0, false, true)},
		specs.OpGreaterEqual: {ld(lo), jmp(bpf.JumpGreaterOrEqual, vlo, 0, 0, false, true)},
		specs.OpLessThan:     {ld(lo), jmp(bpf.JumpGreaterOrEqual, vlo, 0, 0, true, false)},
		specs.OpLessEqual:    {ld(lo), jmp(bpf.JumpGreaterThan, vlo, 0, 0, true, false)},
		specs.OpMaskedEqual: {ld(lo), {ins: bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vlo}},
			jmp(bpf.JumpEqual, uint32(c.ValueTwo), 0, 0, false, true)},
	}
	lowCode, ok := low[c.Op]
	if !ok {
		return nil, fmt.Errorf("argument operator %q is not supported", c.Op)
	}
	if a.bits == 32 {
		return lowCode, nil
	}
	// 64-bit: decide on the high word first, then the low one. A skip of
	// len(lowCode) lands after the check, i.e. the condition holds.
	n := uint8(len(lowCode))
	var high []asmIns
	switch c.Op {
	case specs.OpEqualTo:
		high = []asmIns{ld(hi), jmp(bpf.JumpEqual, vhi, 0, 0, false, true)}
	case specs.OpNotEqual:
		high = []asmIns{ld(hi), jmp(bpf.JumpEqual, vhi, 0, n, false, false)}
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		high = []asmIns{ld(hi), jmp(bpf.JumpGreaterThan, vhi, n+1, 0, false, false), jmp(bpf.JumpEqual, vhi, 0, 0, false, true)}
	case specs.OpLessThan, specs.OpLessEqual:
		high = []asmIns{ld(hi), jmp(bpf.JumpGreaterThan, vhi, 0, 0, true, false), jmp(bpf.JumpEqual, vhi, 0, n, false, false)}
	case specs.OpMaskedEqual:
		high = []asmIns{ld(hi), {ins: bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: uint32(c.Value >> 32)}},
			jmp(bpf.JumpEqual, uint32(c.ValueTwo>>32), 0, 0, false, true)}
	}
	return append(high, lowCode...), nil
}

// argOffsets are the offsets of an argument's low and high 32-bit words
// in seccomp_data, which the kernel fills in its own byte order.
func argOffsets(i uint) (lo, hi uint32) {
	off := uint32(offsetArgs + 8*i)
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return off, off + 4
	}
	return off + 4, off
}

// action is the filter's return value for a profile action.
func action(a specs.LinuxSeccompAction, errno *uint) (uint32, error) {
	switch a {
	case specs.ActAllow:
		return retAllow, nil
	case specs.ActErrno:
		e := uint32(errnoEPERM)
		if errno != nil {
			e = uint32(*errno)
		}
		if e > 0xffff {
			return 0, fmt.Errorf("errno %d out of range", e)
		}
		return retErrno | e, nil
	case specs.ActKill, specs.ActKillThread:
		return retKillThread, nil
	case specs.ActKillProcess:
		return retKillProcess, nil
	case specs.ActTrap:
		return retTrap, nil
	case specs.ActLog:
		return retLog, nil
	}
	return 0, fmt.Errorf("action %q is not supported", a)
}

func ret(v uint32) []bpf.Instruction { return []bpf.Instruction{bpf.RetConstant{Val: v}} }

func cmpUint32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
