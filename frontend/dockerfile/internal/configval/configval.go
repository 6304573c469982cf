// Package configval checks and normalises the values of the Dockerfile
// instructions that only set the image config (STOPSIGNAL, EXPOSE), as
// Docker records them.
package configval

import (
	"fmt"
	"strconv"
	"strings"
)

// ExposedPorts turns "80" into ["80/tcp"] and a range "8000-8002/udp"
// into one entry per port, as Docker records them.
func ExposedPorts(p string) ([]string, error) {
	port, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("EXPOSE %s: protocol must be tcp, udp or sctp", p)
	}
	loText, hiText, isRange := strings.Cut(port, "-")
	if !isRange {
		hiText = loText
	}
	lo, err1 := strconv.Atoi(loText)
	hi, err2 := strconv.Atoi(hiText)
	if err1 != nil || err2 != nil || lo < 0 || hi > 65535 || lo > hi {
		return nil, fmt.Errorf("EXPOSE %s: invalid port or range %q", p, port)
	}
	var out []string
	for n := lo; n <= hi; n++ {
		out = append(out, strconv.Itoa(n)+"/"+proto)
	}
	return out, nil
}

// signalNames are Linux's signal names, which STOPSIGNAL accepts with or
// without "SIG" and in any case, as BuildKit does.
var signalNames = map[string]bool{
	"ABRT": true, "ALRM": true, "BUS": true, "CHLD": true, "CLD": true, "CONT": true, "FPE": true,
	"HUP": true, "ILL": true, "INT": true, "IO": true, "IOT": true, "KILL": true, "PIPE": true,
	"POLL": true, "PROF": true, "PWR": true, "QUIT": true, "SEGV": true, "STKFLT": true, "STOP": true,
	"SYS": true, "TERM": true, "TRAP": true, "TSTP": true, "TTIN": true, "TTOU": true, "URG": true,
	"USR1": true, "USR2": true, "VTALRM": true, "WINCH": true, "XCPU": true, "XFSZ": true,
	"RTMIN": true, "RTMAX": true, "UNUSED": true,
}

// ValidSignal reports whether s names a signal: a number, a name, or
// RTMIN+n / RTMAX-n.
func ValidSignal(s string) bool {
	if n, err := strconv.Atoi(s); err == nil {
		return n > 0
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if base, off, ok := strings.Cut(name, "+"); ok && base == "RTMIN" {
		n, err := strconv.Atoi(off)
		return err == nil && n >= 0 && n <= 30
	}
	if base, off, ok := strings.Cut(name, "-"); ok && base == "RTMAX" {
		n, err := strconv.Atoi(off)
		return err == nil && n >= 0 && n <= 30
	}
	return signalNames[name]
}
