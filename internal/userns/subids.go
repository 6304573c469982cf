package userns

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// IDRange is a subordinate id range of /etc/subuid or /etc/subgid.
type IDRange struct{ Start, Count int }

// SubIDs returns the ranges file lists for the user called name or with
// uid, in file order; lines that do not parse are skipped.
func SubIDs(file, name string, uid int) ([]IDRange, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []IDRange
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Split(strings.TrimSpace(s.Text()), ":")
		if len(fields) != 3 || (fields[0] != name && fields[0] != strconv.Itoa(uid)) {
			continue
		}
		start, err1 := strconv.Atoi(fields[1])
		count, err2 := strconv.Atoi(fields[2])
		if err1 == nil && err2 == nil && count > 0 {
			out = append(out, IDRange{start, count})
		}
	}
	return out, s.Err()
}

// maxExtents is how many subordinate ranges a rootless builder maps: the
// kernel takes 340 lines in uid_map and gid_map (Linux 4.15 and later),
// and the first maps the user's own id.
const maxExtents = 339

// Usable is ranges as the rootless re-exec maps them, all of them, so that
// a user given ids in several pieces (usermod --add-subuids twice) gets
// them all, as podman and rootlesskit do: in file order, leaving out a
// range that overlaps one before it (the kernel refuses overlapping
// extents), at most maxExtents.
func Usable(ranges []IDRange) []IDRange {
	var out []IDRange
	for _, r := range ranges {
		if len(out) == maxExtents {
			break
		}
		overlaps := false
		for _, o := range out {
			if r.Start < o.Start+o.Count && o.Start < r.Start+r.Count {
				overlaps = true
				break
			}
		}
		if !overlaps {
			out = append(out, r)
		}
	}
	return out
}

// Total is how many ids ranges hold.
func Total(ranges []IDRange) int {
	n := 0
	for _, r := range ranges {
		n += r.Count
	}
	return n
}

// mapArgs are the newuidmap (or newgidmap) arguments after the pid: the
// user's own id as 0, then each range in turn from 1.
func mapArgs(own int, ranges []IDRange) []string {
	args := []string{"0", strconv.Itoa(own), "1"}
	next := 1
	for _, r := range ranges {
		args = append(args, strconv.Itoa(next), strconv.Itoa(r.Start), strconv.Itoa(r.Count))
		next += r.Count
	}
	return args
}
