package llb

import (
	"bytes"
	"strings"
	"testing"
)

func TestDigestIgnoresMetaAndDependsOnInputs(t *testing.T) {
	base := NewVertex(ImageOp{Ref: "busybox", Digest: "sha256:aa", Platform: "linux/amd64"}, nil, Meta{Name: "FROM busybox"})
	other := NewVertex(ImageOp{Ref: "busybox", Digest: "sha256:bb", Platform: "linux/amd64"}, nil, Meta{Name: "FROM busybox"})
	run := func(in *Vertex, name string) *Vertex {
		return NewVertex(ExecOp{Args: []string{"/bin/sh", "-c", "true"}, Cwd: "/"}, []*Vertex{in}, Meta{Name: name})
	}
	tests := []struct {
		name string
		a, b *Vertex
		same bool
	}{
		{"same op, other name", run(base, "a"), run(base, "b"), true},
		{"other input", run(base, "a"), run(other, "a"), false},
		{"scratch input", run(nil, "a"), run(base, "a"), false},
		{"other kind", NewVertex(MkdirOp{Path: "/a"}, []*Vertex{base}, Meta{}), NewVertex(CopyOp{Dest: "/a"}, []*Vertex{base}, Meta{}), false},
		{"local dir not encoded", NewVertex(LocalOp{Name: "context", Dir: "/x"}, nil, Meta{}), NewVertex(LocalOp{Name: "context", Dir: "/y"}, nil, Meta{}), true},
	}
	for _, tt := range tests {
		if got := tt.a.Digest() == tt.b.Digest(); got != tt.same {
			t.Errorf("%s: digests equal = %v, want %v", tt.name, got, tt.same)
		}
	}
}

func TestWalkVisitsSharedInputOnce(t *testing.T) {
	base := NewVertex(ImageOp{Ref: "b", Digest: "sha256:aa"}, nil, Meta{})
	a := NewVertex(ExecOp{Args: []string{"a"}}, []*Vertex{base}, Meta{})
	b := NewVertex(ExecOp{Args: []string{"b"}}, []*Vertex{base}, Meta{})
	top := NewVertex(CopyOp{Sources: []string{"/x"}, Dest: "/y"}, []*Vertex{a, b}, Meta{})
	var order []string
	if err := Walk([]*Vertex{top, a}, func(v *Vertex) error { order = append(order, v.Op().Kind()); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "image,exec,exec,copy" {
		t.Errorf("Walk order = %s, want image,exec,exec,copy", got)
	}
	var buf bytes.Buffer
	if err := Print(&buf, []*Vertex{top}); err != nil || strings.Count(buf.String(), "\n") != 4 {
		t.Errorf("Print = %q, %v", buf.String(), err)
	}
}

func TestDigestStringsIsLengthPrefixed(t *testing.T) {
	if DigestStrings("ab", "c") == DigestStrings("a", "bc") {
		t.Error("DigestStrings(ab,c) == DigestStrings(a,bc)")
	}
}
