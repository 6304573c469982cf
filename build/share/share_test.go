package share

import (
	"reflect"
	"testing"

	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver/ops"
)

// TestGroups: builds share a solve unless a step they share mounts a
// secret or an SSH agent their sessions give differently.
func TestGroups(t *testing.T) {
	base := llb.NewVertex(llb.ExecOp{Args: []string{"base"}}, nil, llb.Meta{})
	secret := llb.NewVertex(llb.ExecOp{Args: []string{"use"}, Mounts: []llb.ExecMount{{Type: llb.MountSecret, ID: "tok", Target: "/run/secrets/tok"}}}, []*llb.Vertex{base}, llb.Meta{})
	agent := llb.NewVertex(llb.ExecOp{Args: []string{"ssh"}, Mounts: []llb.ExecMount{{Type: llb.MountSSH, ID: "default"}}}, []*llb.Vertex{base}, llb.Meta{})
	sess := []*ops.Session{
		{Secrets: map[string][]byte{"tok": []byte("a")}, SSH: map[string]string{"default": "/a.sock"}},
		{Secrets: map[string][]byte{"tok": []byte("b")}, SSH: map[string]string{"default": "/a.sock"}},
		{Secrets: map[string][]byte{"tok": []byte("a")}, SSH: map[string]string{"default": "/b.sock"}},
		{Secrets: map[string][]byte{"tok": []byte("b")}},
	}
	for _, tc := range []struct {
		name  string
		roots [][]*llb.Vertex
		want  [][]int
	}{
		{"secret step", [][]*llb.Vertex{{secret}, {secret}, {secret}, {secret}}, [][]int{{0, 2}, {1, 3}}},
		{"ssh step", [][]*llb.Vertex{{agent}, {agent}, {agent}, {agent}}, [][]int{{0, 1}, {2}, {3}}},
		{"only the base shared", [][]*llb.Vertex{{secret}, {base}, {agent}, {base}}, [][]int{{0, 1, 2, 3}}},
	} {
		got := Groups(len(tc.roots), func(i int) []*llb.Vertex { return tc.roots[i] },
			func(i, j int, v *llb.Vertex) bool { return SameSession(sess[i], sess[j], v) })
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Groups = %v, want %v", tc.name, got, tc.want)
		}
	}
}
