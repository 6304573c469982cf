package remote

import "testing"

// TestIsCommitPrefix: ADD --checksum of a git source is 4 to 64 lowercase
// hex digits.
func TestIsCommitPrefix(t *testing.T) {
	hex64 := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for s, want := range map[string]bool{
		"abcd": true, "0123456789abcdef0123456789abcdef01234567": true, hex64: true,
		"abc": false, hex64 + "0": false, "ABCD": false, "abcg": false, "": false, "sha256:abcd": false, "-abcd": false,
	} {
		if got := isCommitPrefix(s); got != want {
			t.Errorf("isCommitPrefix(%q) = %v, want %v", s, got, want)
		}
	}
}
