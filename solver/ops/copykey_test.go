package ops

import (
	"testing"

	"github.com/builder-dev/builder/llb"
	"github.com/opencontainers/go-digest"
)

// TestCopyFromKeyCoversXattrs: since COPY --from keeps xattrs, its key is
// not the one builder gave it before, whose cached layers lack them (a
// capability set in a stage); a COPY of heredocs alone keeps its key.
func TestCopyFromKeyCoversXattrs(t *testing.T) {
	w := &Worker{}
	stage := llb.NewVertex(llb.MkdirOp{Path: "/a", Mode: 0o755}, []*llb.Vertex{nil}, llb.Meta{Name: "mkdir /a"})
	for _, tc := range []struct {
		name    string
		op      llb.CopyOp
		inputs  []*llb.Vertex
		in      []digest.Digest
		changed bool
	}{
		{"from a stage", llb.CopyOp{Sources: []string{"/a"}, Dest: "/b"}, []*llb.Vertex{nil, stage}, []digest.Digest{"", digest.FromString("stage")}, true},
		{"heredoc", llb.CopyOp{Inline: []llb.InlineFile{{Path: "f", Data: "x"}}, Dest: "/f"}, []*llb.Vertex{nil}, []digest.Digest{""}, false},
	} {
		v := llb.NewVertex(tc.op, tc.inputs, llb.Meta{Name: "COPY"})
		op, err := w.Op(v)
		if err != nil {
			t.Fatal(err)
		}
		k, err := op.CacheKey(t.Context(), tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if old := opKey(tc.op, tc.in); (k != old) != tc.changed {
			t.Errorf("%s: key %s, key before xattrs were kept %s; want them to differ: %v", tc.name, k, old, tc.changed)
		}
	}
}
