package ops

import (
	"testing"

	"github.com/builder-dev/builder/llb"
)

// TestElidesSync: a step's sync calls are elided only when nothing it
// writes outlives it without the syncfs before its record: a writable
// cache mount does (later builds use its files after a crash).
func TestElidesSync(t *testing.T) {
	for _, c := range []struct {
		name   string
		mounts []llb.ExecMount
		want   bool
	}{
		{"no mounts", nil, true},
		{"writable cache", []llb.ExecMount{{Type: llb.MountTmpfs, Target: "/t"}, {Type: llb.MountCache, Target: "/c"}}, false},
		{"read-only cache", []llb.ExecMount{{Type: llb.MountCache, Target: "/c", Readonly: true}}, true},
		{"tmpfs, rw bind, secret", []llb.ExecMount{{Type: llb.MountTmpfs, Target: "/t"}, {Type: llb.MountBind, Target: "/b"}, {Type: llb.MountSecret, Target: "/s"}}, true},
	} {
		if got := elidesSync(llb.ExecOp{Mounts: c.mounts}); got != c.want {
			t.Errorf("%s: ElideSync %v, want %v", c.name, got, c.want)
		}
	}
}
