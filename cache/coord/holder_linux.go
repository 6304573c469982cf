//go:build linux

package coord

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Holder describes the process holding the lock on the file at path
// (for the database, on it or on its PATH.lock), as /proc/locks shows it:
// "pid 1234 (builder build -t app .)", or "" when it cannot tell (the
// holder is in another pid namespace, say).
func Holder(path string) string {
	var suffixes []string
	for _, p := range []string{path + ".lock", path} {
		if fi, err := os.Stat(p); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				suffixes = append(suffixes, ":"+strconv.FormatUint(st.Ino, 10))
			}
		}
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return ""
	}
	defer f.Close()
	// Lines read "1: FLOCK  ADVISORY  WRITE 19258 fe:00:10027831 0 EOF":
	// the pid, then major:minor:inode of the locked file. Waiters show
	// as "1: -> FLOCK ...", with one field more, and are left out.
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[3] != "WRITE" || !slices.ContainsFunc(suffixes, func(s string) bool { return strings.HasSuffix(fields[5], s) }) {
			continue
		}
		pid, err := strconv.Atoi(fields[4])
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if args := strings.TrimRight(strings.ReplaceAll(string(cmd), "\x00", " "), " "); args != "" {
			return fmt.Sprintf("pid %d (%s)", pid, args)
		}
		return fmt.Sprintf("pid %d", pid)
	}
	return ""
}
