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
