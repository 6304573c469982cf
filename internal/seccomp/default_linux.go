package seccomp

import (
	"fmt"

	profiles "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// DefaultProfile is Docker's default profile resolved as Docker resolves
// it for a container whose bounding set is caps (names like "CAP_CHOWN"):
// for this machine's architecture (with its 32-bit ABIs) and kernel.
func DefaultProfile(caps []string) (*specs.LinuxSeccomp, error) {
	p, err := profiles.GetDefaultProfile(&specs.Spec{Process: &specs.Process{
		Capabilities: &specs.LinuxCapabilities{Bounding: caps},
	}})
	if err != nil {
		return nil, fmt.Errorf("resolving Docker's default seccomp profile: %w", err)
	}
	return p, nil
}

// Default compiles DefaultProfile(caps).
func Default(caps []string) ([]bpf.RawInstruction, error) { return compileDefault(caps, false) }

// DefaultElidingSync compiles ElideSync(DefaultProfile(caps)).
func DefaultElidingSync(caps []string) ([]bpf.RawInstruction, error) {
	return compileDefault(caps, true)
}

func compileDefault(caps []string, elideSync bool) ([]bpf.RawInstruction, error) {
	p, err := DefaultProfile(caps)
	if err != nil {
		return nil, err
	}
	if elideSync {
		p = ElideSync(p)
	}
	prog, err := Compile(p)
	if err != nil {
		return nil, fmt.Errorf("compiling Docker's default seccomp profile: %w", err)
	}
	return prog, nil
}
