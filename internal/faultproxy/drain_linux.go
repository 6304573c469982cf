package faultproxy

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// drain waits (up to timeout) until the peer has acknowledged everything
// written to c, so that a reset discards nothing already counted as sent:
// the count then matches what the client received.
func drain(c *net.TCPConn, timeout time.Duration) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		unacked := 0
		raw.Control(func(fd uintptr) {
			unacked, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		})
		if err != nil || unacked == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
