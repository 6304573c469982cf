package sandboxinit

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The init's side of the network (see executor's network_linux.go for the
// parent's): join the namespace the parent's sandboxes share, bring up lo
// in a private one, wait for the helper's interface, drop CAP_NET_RAW on
// the host's network.

// holdNamespace is the main of the holder of a shared network namespace:
// wait for the parent to go.
func holdNamespace() int {
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// joinSharedNetwork enters the shared namespace (NetFD).
func joinSharedNetwork(n Net) error {
	if !n.Shared {
		return nil
	}
	err := unix.Setns(NetFD, unix.CLONE_NEWNET)
	unix.Close(NetFD)
	if err != nil {
		return os.NewSyscallError("setns(shared network namespace)", err)
	}
	return nil
}

// setupNetwork brings up lo in a sandbox with its own network namespace;
// with the host's network there is nothing to do.
func setupNetwork(n Net) error {
	if !n.Private {
		return nil
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return os.NewSyscallError("ioctl(SIOCGIFFLAGS lo)", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return os.NewSyscallError("ioctl(SIOCSIFFLAGS lo up)", err)
	}
	return nil
}

// waitNetwork waits for the parent to report the helper's
// interface configured (or failed); see NetFD.
func waitNetwork(n Net) error {
	if !n.Wait {
		return nil
	}
	f := os.NewFile(NetFD, "network")
	defer f.Close()
	b, err := io.ReadAll(f)
	switch {
	case err != nil:
		return fmt.Errorf("waiting for the network helper: %w", err)
	case len(b) == 1 && b[0] == 0:
		return nil
	case len(b) == 0:
		return errors.New("builder stopped before the network helper was ready")
	}
	return errors.New(string(b))
}

// dropNetRawBounding removes CAP_NET_RAW from the bounding set; like
// dropBoundingSet it runs before the uid changes.
func dropNetRawBounding(n Net) error {
	if !n.DropNetRaw {
		return nil
	}
	if err := unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_NET_RAW, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_CAPBSET_DROP CAP_NET_RAW)", err)
	}
	return nil
}
