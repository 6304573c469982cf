//go:build linux

package filecopy

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fileJob is a regular file of a directory to copy: its name in both
// directories, its path below the source being copied, and its stat.
type fileJob struct {
	name, sub string
	st        unix.Stat_t
}

// fileSetupCost is what copying a file costs beyond its bytes, in bytes of
// copying: a dozen system calls (open, create, owner, mode, times, close)
// take about as long as copying 16 KiB between page caches.
const fileSetupCost = 16 << 10

// serialBelow is the cost under which a directory's files are copied in
// one batch, on the walk's thread: starting and waiting for a goroutine
// costs more than it saves.
const serialBelow = 8 * fileSetupCost

// batches splits jobs into at most n contiguous runs of about the same
// cost (size plus fileSetupCost each), so that a few large files do not
// leave n-1 workers idle behind one.
func batches(jobs []fileJob, n int) [][]fileJob {
	cost := func(j *fileJob) int64 { return max(j.st.Size, 0) + fileSetupCost }
	var total int64
	for i := range jobs {
		total += cost(&jobs[i])
	}
	if n < 2 || total < serialBelow || len(jobs) < 2 {
		return [][]fileJob{jobs}
	}
	n = min(n, len(jobs))
	var parts [][]fileJob
	start, acc, done := 0, int64(0), int64(0)
	for i := range jobs {
		acc += cost(&jobs[i])
		left := n - len(parts) // runs still to make, this one included
		// A run ends once it has its share of what is left.
		if i == len(jobs)-1 || (left > 1 && acc*int64(left) >= total-done) {
			parts = append(parts, jobs[start:i+1])
			start, done, acc = i+1, done+acc, 0
		}
	}
	return parts
}

// creation is what the kernel gives a file this copy creates in a
// directory: its owner (the process's, but the directory's group when the
// directory is setgid) and the permission bits asked for less the umask.
// A file that gets its owner and mode right from its create is not
// chown'ed and chmod'ed again, two system calls (each a journal handle on
// ext4) of a dozen per small file.
type creation struct {
	uid, gid int
	umask    uint32
}

// keeps reports whether a file created with perm keeps exactly perm, and
// the bits to create it with: not for the special bits, which a create
// may drop.
func (m *creation) keeps(perm fs.FileMode) (uint32, bool) {
	if perm&^fs.ModePerm != 0 || uint32(perm)&m.umask != 0 {
		return 0, false
	}
	return uint32(perm), true
}

// creationIn returns what a file created in d gets, or nil when that is
// not known: a default ACL on d replaces the umask, and the umask is read
// from /proc.
func (c *copier) creationIn(d dir) *creation {
	if c.umask < 0 {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return nil
	}
	if _, err := unix.Fgetxattr(d.fd, "system.posix_acl_default", nil); !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	m := &creation{uid: c.euid, gid: c.egid, umask: uint32(c.umask)}
	if st.Mode&unix.S_ISGID != 0 {
		m.gid = int(st.Gid)
	}
	return m
}

// readCreds sets the copier's view of the files the thread creates: its
// effective ids and umask (-1 when /proc does not say).
func (c *copier) readCreds() {
	c.euid, c.egid, c.umask = unix.Geteuid(), unix.Getegid(), -1
	// The thread's own: one that unshared its mount namespace has a copy
	// of the process's umask.
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if u, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				c.umask = int(u)
			}
			return
		}
	}
}
