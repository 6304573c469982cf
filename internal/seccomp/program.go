package seccomp

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"
)

// Encode lays out a program as the kernel's struct sock_filter array, in
// this machine's byte order, for the sandbox init (executor/sandboxinit), which loads it.
func Encode(prog []bpf.RawInstruction) []byte {
	b := make([]byte, 0, 8*len(prog))
	for _, ins := range prog {
		b = binary.NativeEndian.AppendUint16(b, ins.Op)
		b = append(b, ins.Jt, ins.Jf)
		b = binary.NativeEndian.AppendUint32(b, ins.K)
	}
	return b
}

// Decode reverses Encode.
func Decode(b []byte) ([]bpf.RawInstruction, error) {
	if len(b) == 0 || len(b)%8 != 0 || len(b)/8 > 4096 {
		return nil, fmt.Errorf("seccomp program of %d bytes: want 1 to 4096 instructions of 8 bytes", len(b))
	}
	prog := make([]bpf.RawInstruction, len(b)/8)
	for i := range prog {
		ins := b[8*i : 8*i+8]
		prog[i] = bpf.RawInstruction{
			Op: binary.NativeEndian.Uint16(ins[0:2]),
			Jt: ins[2],
			Jf: ins[3],
			K:  binary.NativeEndian.Uint32(ins[4:8]),
		}
	}
	return prog, nil
}
