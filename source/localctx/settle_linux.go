//go:build linux

package localctx

import (
	"time"

	"golang.org/x/sys/unix"
)

// zfsSuperMagic is ZFS's statfs type (not in x/sys/unix: out of tree).
const zfsSuperMagic = 0x2fc12fc1

// rootSettle is the settling margin of the file system at root (see
// settled): fineSettle where the kernel stamps files from the clock
// time.Now reads, coarseSettle anywhere the stamps may come from another
// machine's clock (NFS, 9p, virtiofs and other FUSE, CIFS, WSL's drvfs)
// or the file system is unknown.
func rootSettle(root string) time.Duration {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return coarseSettle
	}
	return settleFor(int64(st.Type))
}

// settleFor is the margin of a file system of statfs type fsType.
func settleFor(fsType int64) time.Duration {
	switch uint32(fsType) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC,
		unix.TMPFS_MAGIC, unix.OVERLAYFS_SUPER_MAGIC, unix.F2FS_SUPER_MAGIC,
		unix.BCACHEFS_SUPER_MAGIC, unix.RAMFS_MAGIC, zfsSuperMagic:
		return fineSettle
	}
	return coarseSettle
}
