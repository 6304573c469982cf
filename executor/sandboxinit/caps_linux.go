package sandboxinit

import (
	"os"

	"golang.org/x/sys/unix"
)

// DefaultCaps is Docker's default capability set: the bounding set of
// every sandbox that is not insecure.
var DefaultCaps = []uintptr{
	unix.CAP_CHOWN,
	unix.CAP_DAC_OVERRIDE,
	unix.CAP_FSETID,
	unix.CAP_FOWNER,
	unix.CAP_MKNOD,
	unix.CAP_NET_RAW,
	unix.CAP_SETGID,
	unix.CAP_SETUID,
	unix.CAP_SETFCAP,
	unix.CAP_SETPCAP,
	unix.CAP_NET_BIND_SERVICE,
	unix.CAP_SYS_CHROOT,
	unix.CAP_KILL,
	unix.CAP_AUDIT_WRITE,
}

// defaultCapMask is DefaultCaps as a bit set.
func defaultCapMask() uint64 {
	var m uint64
	for _, c := range DefaultCaps {
		m |= 1 << c
	}
	return m
}

// dropBoundingSet removes every capability outside DefaultCaps from the
// calling thread's bounding set, and clears its ambient set. It needs
// CAP_SETPCAP, so it runs before the uid changes. One prctl per dropped
// capability, none to read the set first: PR_CAPBSET_DROP fails with EINVAL
// past the kernel's last capability, which ends the loop (the last one
// kept, CAP_SETFCAP, is 31; every kernel has more).
func dropBoundingSet() error {
	keep := defaultCapMask()
	for c := uintptr(0); c < 64; c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0)
		if err == unix.EINVAL {
			break
		}
		if err != nil {
			return os.NewSyscallError("prctl(PR_CAPBSET_DROP)", err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", err)
	}
	return nil
}

// setCaps sets the calling thread's effective, permitted and inheritable
// sets: DefaultCaps for root, empty for anyone else. A capability the
// thread is not permitted (root's permitted set is the bounding set it
// started with) or that it dropped from the bounding set (noNetRaw, see
// dropNetRawBounding) is left out, as the kernel would refuse it. It runs
// after the uid change, on the thread that will execve.
func setCaps(root, noNetRaw bool) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if root {
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return os.NewSyscallError("capget", err)
		}
		want := defaultCapMask()
		if noNetRaw {
			want &^= 1 << unix.CAP_NET_RAW
		}
		for i := range data {
			d := &data[i]
			d.Effective = uint32(want>>(32*i)) & d.Permitted
			d.Permitted, d.Inheritable = d.Effective, d.Effective
		}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capset", err)
	}
	return nil
}

// setAllCaps gives the calling thread, for an insecure sandbox running as
// root, every capability it is permitted (all of the bounding set, which
// the builder itself may have been given less of) in its effective and
// inheritable sets; anyone else gets none, as in a secure sandbox.
func setAllCaps(root, _ bool) error {
	if !root {
		return setCaps(false, false)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capget", err)
	}
	var bounding [2]uint32
	// PR_CAPBSET_READ fails with EINVAL past the kernel's last capability.
	for c := uintptr(0); c < 64; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, c, 0, 0, 0)
		if err != nil {
			break
		}
		if in == 1 {
			bounding[c/32] |= 1 << (c % 32)
		}
	}
	for i := range data {
		data[i].Effective = data[i].Permitted
		data[i].Inheritable = data[i].Permitted & bounding[i]
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capset", err)
	}
	return nil
}
