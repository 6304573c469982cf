//go:build !linux

package coord

// Holder cannot tell who holds the lock outside Linux (no
// /proc/locks); it returns "".
func Holder(string) string { return "" }
