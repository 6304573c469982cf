//go:build linux

package localctx

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSettleFor: local file systems get the fine margin; network, FUSE
// (virtiofs), 9p (WSL's drvfs) and unknown ones the coarse one.
func TestSettleFor(t *testing.T) {
	tests := []struct {
		name   string
		fsType int64
		want   time.Duration
	}{
		{"ext4", unix.EXT4_SUPER_MAGIC, fineSettle},
		{"xfs", unix.XFS_SUPER_MAGIC, fineSettle},
		{"btrfs", unix.BTRFS_SUPER_MAGIC, fineSettle},
		{"tmpfs", unix.TMPFS_MAGIC, fineSettle},
		{"overlay", unix.OVERLAYFS_SUPER_MAGIC, fineSettle},
		{"zfs", zfsSuperMagic, fineSettle},
		{"nfs", unix.NFS_SUPER_MAGIC, coarseSettle},
		{"9p", unix.V9FS_MAGIC, coarseSettle},
		{"fuse", unix.FUSE_SUPER_MAGIC, coarseSettle},
		{"cifs", unix.CIFS_SUPER_MAGIC, coarseSettle},
		{"smb2", unix.SMB2_SUPER_MAGIC, coarseSettle},
		{"unknown", 0x12345678, coarseSettle},
	}
	for _, tt := range tests {
		if got := settleFor(tt.fsType); got != tt.want {
			t.Errorf("%s: settleFor = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := rootSettle(t.TempDir()); got != fineSettle {
		t.Logf("the test's temp dir gets %v (not a local file system?)", got)
	}
	if got := rootSettle("/does/not/exist"); got != coarseSettle {
		t.Errorf("rootSettle of a missing root = %v, want %v", got, coarseSettle)
	}
	// Whole-second ctimes keep the coarse margin on a local file system.
	walked := time.Unix(1_800_000_000, 0)
	k := FileKey{Size: 1, MtimeNs: walked.Add(-time.Hour).UnixNano(), CtimeNs: walked.Add(-time.Second).UnixNano()}
	if settled(k, walked, fineSettle) {
		t.Errorf("a whole-second ctime 1 s old counts as settled")
	}
}
