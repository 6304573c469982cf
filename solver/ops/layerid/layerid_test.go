package layerid

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/snapshot"
	"github.com/opencontainers/go-digest"
)

// TestSeal commits a step's snapshot with each snapshotter and checks
// what it reports against the layer left on disk: the copy snapshotter
// makes the layer in Commit, so a digest taken before it would see an
// empty layer.
func TestSeal(t *testing.T) {
	for _, copyMode := range []bool{false, true} {
		t.Run(map[bool]string{false: "overlay", true: "copy"}[copyMode], func(t *testing.T) {
			snaps, err := snapshot.NewSnapshotter(filepath.Join(t.TempDir(), "snapshots"), snapshot.WithCopy(copyMode))
			if err != nil {
				t.Fatal(err)
			}
			if err := snaps.Prepare("a"); err != nil {
				t.Fatal(err)
			}
			empty, content, err := Seal(t.Context(), snaps, "a")
			if err != nil || !empty || content != "" {
				t.Fatalf("Seal(nothing written) = %v, %q, %v; want empty, no content", empty, content, err)
			}

			if err := snaps.Prepare("b"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(snaps.UpperDir("b"), "f"), []byte("out"), 0o644); err != nil {
				t.Fatal(err)
			}
			empty, content, err = Seal(t.Context(), snaps, "b")
			if err != nil || empty {
				t.Fatalf("Seal(one file) = empty %v, %v; want a layer", empty, err)
			}
			want, err := Layer(t.Context(), snaps.FS("b"))
			if err != nil {
				t.Fatal(err)
			}
			if content != want || content == "" {
				t.Fatalf("Seal(one file) content = %q, want the committed layer's %q", content, want)
			}
			if _, err := os.Stat(filepath.Join(snaps.FS("b"), "..", "work")); !os.IsNotExist(err) {
				t.Fatalf("workdir after Seal: %v, want it removed by Commit", err)
			}
			// Times are not content.
			old := time.Unix(1, 0)
			if err := os.Chtimes(filepath.Join(snaps.FS("b"), "f"), old, old); err != nil {
				t.Fatal(err)
			}
			if again, err := Layer(t.Context(), snaps.FS("b")); err != nil || again != content {
				t.Fatalf("Layer after a time change = %q, %v; want %q", again, err, content)
			}

			if _, _, err := Seal(t.Context(), snaps, "missing"); err == nil {
				t.Fatal("Seal(an id never prepared) succeeded")
			}
		})
	}
}

func TestChain(t *testing.T) {
	l1, l2 := digest.FromString("1"), digest.FromString("2")
	top := func(c ...cache.Snapshot) digest.Digest { return Chain(c) }
	if got := top(); got == "" {
		t.Fatal(`Chain(no snapshots) = "", want the empty tree's name`)
	}
	if got := top(cache.Snapshot{ID: "x"}); got != "" {
		t.Fatalf("Chain(a layer of unknown content) = %q, want \"\"", got)
	}
	a := top(cache.Snapshot{ID: "2", Content: l2}, cache.Snapshot{ID: "1", Content: l1})
	b := top(cache.Snapshot{ID: "9", Content: l2}, cache.Snapshot{ID: "8", DiffID: l1})
	if a != b {
		t.Fatalf("Chain of the same layers under other ids = %q and %q, want equal", a, b)
	}
	if c := top(cache.Snapshot{ID: "1", Content: l1}, cache.Snapshot{ID: "2", Content: l2}); c == a {
		t.Fatal("Chain does not depend on the order of the layers")
	}
	if e := top(cache.Snapshot{ID: "3", Empty: true}, cache.Snapshot{ID: "2", Content: l2}, cache.Snapshot{ID: "1", Content: l1}); e == a {
		t.Fatal("an empty layer on top does not change the chain's name")
	}
}
