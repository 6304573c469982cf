package llb

import (
	"io/fs"
	"testing"
)

func TestChmod(t *testing.T) {
	tests := []struct {
		spec string
		in   fs.FileMode
		want fs.FileMode
	}{
		{"0755", 0o600, 0o755},
		{"4755", 0o600, 0o755 | fs.ModeSetuid},
		{"+x", 0o644, 0o755},
		{"u+x", 0o644, 0o744},
		{"go-w", 0o666, 0o644},
		{"a=r", 0o755, 0o444},
		{"u=rwx,g=rx,o=", 0o644, 0o750},
		{"a=rX", 0o644, 0o444},
		{"a=rX", 0o744, 0o555},
		{"a=rX", fs.ModeDir | 0o700, 0o555},
		{"g=u", 0o640, 0o660},
		{"u+s", 0o755, 0o755 | fs.ModeSetuid},
		{"+t", 0o777, 0o777 | fs.ModeSticky},
	}
	for _, tt := range tests {
		c, err := ParseChmod(tt.spec)
		if err != nil {
			t.Errorf("ParseChmod(%q): %v", tt.spec, err)
			continue
		}
		if got := c.Apply(tt.in); got != tt.want {
			t.Errorf("ParseChmod(%q).Apply(%v) = %v, want %v", tt.spec, tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"99999", "u", "u+q", "z+x", "77777"} {
		if _, err := ParseChmod(bad); err == nil {
			t.Errorf("ParseChmod(%q) succeeded", bad)
		}
	}
}
