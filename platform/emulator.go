package platform

import (
	"fmt"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// EmulatorPackage is the Debian package that provides the QEMU user
// emulators, statically linked so they work inside any root filesystem.
const EmulatorPackage = "qemu-user-static"

// qemuNames maps a GOARCH to the name Debian's qemu-user-static registers
// in binfmt_misc (/usr/share/binfmts/qemu-*).
var qemuNames = map[string]string{
	"386":      "qemu-i386",
	"amd64":    "qemu-x86_64",
	"arm":      "qemu-arm",
	"arm64":    "qemu-aarch64",
	"loong64":  "qemu-loongarch64",
	"mips64le": "qemu-mips64el",
	"ppc64le":  "qemu-ppc64le",
	"riscv64":  "qemu-riscv64",
	"s390x":    "qemu-s390x",
}

// EmulatorName is the binfmt_misc entry that runs p's binaries, or "" when
// no QEMU user emulator is known for p's architecture.
func EmulatorName(p ocispec.Platform) string {
	return qemuNames[platforms.Normalize(p).Architecture]
}

// Emulator is the state of one binfmt_misc entry.
type Emulator struct {
	Name        string // "qemu-aarch64"
	Registered  bool
	Enabled     bool
	Interpreter string
	Flags       string // "PF"
}

// Fixed reports whether the interpreter was opened at registration (the F
// flag): only then does it work inside a sandbox whose root filesystem does
// not have it, and for rootless builds.
func (e Emulator) Fixed() bool { return strings.Contains(e.Flags, "F") }

// ErrNoEmulator says a platform cannot run here and how to fix that.
type ErrNoEmulator struct {
	Platform ocispec.Platform
	Emulator Emulator // zero when no emulator exists for the architecture
	Reason   string
}

func (e *ErrNoEmulator) Error() string {
	p := Format(e.Platform)
	if e.Emulator.Name == "" {
		return fmt.Sprintf("cannot run %s steps on %s: no QEMU user emulator is known for %s", p, Format(Host()), e.Platform.Architecture)
	}
	return fmt.Sprintf("cannot run %s steps on %s: %s; %s", p, Format(Host()), e.Reason, RegisterHint(e.Emulator.Name))
}

// RegisterHint says how to install and register emulator name with the F
// flag on Debian, mounting binfmt_misc first where it is not.
func RegisterHint(name string) string {
	return fmt.Sprintf("install and register it as root: apt-get install %s binfmt-support && "+
		"{ [ -e %s/register ] || mount -t binfmt_misc binfmt_misc %s; } && update-binfmts --enable %s",
		EmulatorPackage, BinfmtDir, BinfmtDir, name)
}

// BinfmtDir is where binfmt_misc is mounted.
const BinfmtDir = "/proc/sys/fs/binfmt_misc"

// CheckRunnable returns nil when RUN steps of platform p can run on this
// host: natively, or through a QEMU emulator registered, enabled and fixed
// (F) in binfmt_misc. Otherwise an *ErrNoEmulator naming the platform, the
// Debian package and the commands to register it.
func CheckRunnable(p ocispec.Platform) error {
	if Native(p) {
		return nil
	}
	name := EmulatorName(p)
	if name == "" {
		return &ErrNoEmulator{Platform: p}
	}
	e, err := ReadEmulator(BinfmtDir, name)
	switch {
	case err != nil:
		return &ErrNoEmulator{Platform: p, Emulator: Emulator{Name: name}, Reason: err.Error()}
	case !e.Registered:
		return &ErrNoEmulator{Platform: p, Emulator: e, Reason: name + " is not registered in " + BinfmtDir}
	case !e.Enabled:
		return &ErrNoEmulator{Platform: p, Emulator: e, Reason: name + " is registered but disabled"}
	case !e.Fixed():
		return &ErrNoEmulator{Platform: p, Emulator: e, Reason: name + " is registered without the F flag, so the sandbox cannot open " + e.Interpreter +
			" (remove it with `echo -1 > " + BinfmtDir + "/" + name + "` first)"}
	}
	return nil
}
