package export

import (
	"runtime"
	"testing"
)

// TestScanLimit checks that a build of many platforms scans at most one
// tree per CPU at once, and a build of one platform one.
func TestScanLimit(t *testing.T) {
	n := runtime.NumCPU()
	for _, tc := range []struct{ images, want int }{{1, 1}, {n, n}, {n + 5, n}, {0, 1}} {
		if got := scanLimit(tc.images); got != tc.want {
			t.Errorf("scanLimit(%d) = %d, want %d", tc.images, got, tc.want)
		}
	}
}
