package sandboxinit

import "testing"

// TestLoadSeccompRefusesMalformed: a program that is not whole sock_filter
// records never reaches the kernel.
func TestLoadSeccompRefusesMalformed(t *testing.T) {
	for _, n := range []int{1, 7, 9, 8 * 4097} {
		if err := LoadSeccomp(make([]byte, n)); err == nil {
			t.Errorf("LoadSeccomp(%d bytes) succeeded", n)
		}
	}
}
