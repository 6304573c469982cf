//go:build linux

package filecopy

import "golang.org/x/sys/unix"

// fileJob is a regular file of a directory to copy: its name in both
// directories and its stat.
type fileJob struct {
	name string
	st   unix.Stat_t
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
