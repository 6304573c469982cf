//go:build linux

package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/builder-dev/builder/internal/testutil"
	"golang.org/x/sys/unix"
)

func newTestSnapshotter(t *testing.T, opts ...Option) Snapshotter {
	t.Helper()
	s, err := NewSnapshotter(filepath.Join(t.TempDir(), "snapshots"), opts...)
	if err != nil {
		t.Fatalf("NewSnapshotter() = %v", err)
	}
	return s
}

func TestSnapshotterMounts(t *testing.T) {
	s := &overlaySnapshotter{layout{root: "/s"}}
	u := &overlaySnapshotter{layout{root: "/s", userXattr: true}}
	c := &copySnapshotter{layout{root: "/s"}}
	tests := []struct {
		name string
		got  []Mount
		want []Mount
	}{
		{"active, no parents", s.Mounts("x", nil), []Mount{{Type: "overlay", Source: "overlay", Options: []string{
			"index=off", "redirect_dir=off", "metacopy=off", "lowerdir=/s/empty", "upperdir=/s/x/fs", "workdir=/s/x/work"}}}},
		{"active, two parents", s.Mounts("x", []string{"p1", "p2"}), []Mount{{Type: "overlay", Source: "overlay", Options: []string{
			"index=off", "redirect_dir=off", "metacopy=off", "lowerdir=/s/p1/fs:/s/p2/fs:/s/empty", "upperdir=/s/x/fs", "workdir=/s/x/work"}}}},
		{"active, userxattr", u.Mounts("x", []string{"p"}), []Mount{{Type: "overlay", Source: "overlay", Options: []string{
			"index=off", "redirect_dir=nofollow", "metacopy=off", "userxattr", "lowerdir=/s/p/fs:/s/empty", "upperdir=/s/x/fs", "workdir=/s/x/work"}}}},
		{"view, no parents", s.View(nil), []Mount{{Type: "bind", Source: "/s/empty", Options: []string{"rbind", "ro"}}}},
		{"view, one parent", s.View([]string{"p"}), []Mount{{Type: "overlay", Source: "overlay", Options: []string{
			"ro", "index=off", "redirect_dir=off", "metacopy=off", "lowerdir=/s/p/fs:/s/empty"}}}},
		{"copy, active", c.Mounts("x", []string{"p"}), []Mount{{Type: "bind", Source: "/s/x/rootfs", Options: []string{"bind"}}}},
		{"copy, view, no parents", c.View(nil), []Mount{{Type: "bind", Source: "/s/empty", Options: []string{"rbind", "ro"}}}},
	}
	if s.UpperDir("x") != "/s/x/fs" || c.UpperDir("x") != "/s/x/rootfs" {
		t.Errorf("UpperDir(x) = %s (overlay), %s (copy); want /s/x/fs, /s/x/rootfs", s.UpperDir("x"), c.UpperDir("x"))
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %+v\nwant %+v", tt.name, tt.got, tt.want)
		}
	}
}

// TestManyLayers mounts an overlay whose lower dirs do not fit in the one
// page mount(2) takes (200 layers under a long state directory path): it is
// mounted layer by layer, and every layer is visible. Where the kernel has no
// "lowerdir+" (before 6.8) the mount fails saying what to do.
func TestManyLayers(t *testing.T) {
	testutil.RequiresHostRoot(t)
	root := filepath.Join(t.TempDir(), strings.Repeat("r", 100))
	s, err := NewSnapshotter(root)
	if err != nil {
		t.Fatal(err)
	}
	var parents []string
	for i := range 200 {
		id := fmt.Sprintf("layer-%03d", i)
		if err := os.MkdirAll(s.FS(id), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(s.FS(id), id), []byte(id), 0o644)
		parents = append(parents, id)
	}
	target := t.TempDir()
	err = MountAll(s.View(parents), target)
	if errors.Is(err, ErrMountDataTooLong) {
		if !strings.Contains(err.Error(), "fewer layers") || !strings.Contains(err.Error(), "6.8") {
			t.Errorf("error %q does not say what to do", err)
		}
		t.Skipf("kernel without fsconfig lowerdir+: %v", err)
	}
	if err != nil {
		t.Fatalf("MountAll(200 long lowerdirs) = %v", err)
	}
	defer Unmount(target)
	for _, id := range []string{"layer-000", "layer-123", "layer-199"} {
		if b, err := os.ReadFile(filepath.Join(target, id)); err != nil || string(b) != id {
			t.Errorf("%s in the mounted view: %q, %v", id, b, err)
		}
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("writing into the read-only view: %v, want EROFS", err)
	}

	// Overlay itself stacks at most 500 layers.
	for i := 200; i < 510; i++ {
		id := fmt.Sprintf("layer-%03d", i)
		os.MkdirAll(s.FS(id), 0o755)
		parents = append(parents, id)
	}
	err = MountAll(s.View(parents), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "lowerdir+") {
		t.Errorf("MountAll(510 layers) = %v, want an error naming the layer that did not fit", err)
	}
}

// TestOverlayDiff makes changes through a real overlay mount and checks
// that the upper directory, written with WriteDiff, has the whiteout and
// the opaque directory, and that applying that diff over the lower gives
// the same view.
func TestOverlayDiff(t *testing.T) {
	for _, userXattr := range []bool{false, true} {
		t.Run(fmt.Sprintf("userxattr=%v", userXattr), func(t *testing.T) {
			if userXattr {
				testutil.RequiresRoot(t)
			} else {
				testutil.RequiresHostRoot(t)
			}
			s := newTestSnapshotter(t, WithUserXattr(userXattr))
			must(t, s.Prepare("base"))
			base := s.FS("base")
			for _, d := range []string{"dir", "keep", "movedir"} {
				must(t, os.Mkdir(filepath.Join(base, d), 0o755))
			}
			for _, f := range []string{"file", "file2", "dir/a", "dir/b", "keep/x", "movedir/y"} {
				must(t, os.WriteFile(filepath.Join(base, f), []byte(f), 0o644))
			}
			must(t, s.Commit("base"))

			must(t, s.Prepare("top"))
			mnt := t.TempDir()
			if err := MountAll(s.Mounts("top", []string{"base"}), mnt); err != nil {
				t.Fatalf("MountAll(Mounts(top)) = %v", err)
			}
			mounted := true
			defer func() {
				if mounted {
					_ = Unmount(mnt)
				}
			}()
			// Two whiteouts: overlay makes them hard links of one inode,
			// which must still come out as two .wh. files.
			must(t, os.Remove(filepath.Join(mnt, "file")))
			must(t, os.Remove(filepath.Join(mnt, "file2")))
			must(t, os.RemoveAll(filepath.Join(mnt, "dir")))
			must(t, os.Mkdir(filepath.Join(mnt, "dir"), 0o755))
			must(t, os.WriteFile(filepath.Join(mnt, "dir/new"), []byte("new"), 0o644))
			// redirect_dir=off: renaming a lower directory is refused, so
			// the upper never holds a redirect; mv falls back to copying.
			if err := os.Rename(filepath.Join(mnt, "movedir"), filepath.Join(mnt, "moved")); !errors.Is(err, unix.EXDEV) {
				t.Errorf("rename of a lower directory = %v, want EXDEV", err)
			}
			must(t, Unmount(mnt))
			mounted = false
			must(t, s.Commit("top"))

			var diff bytes.Buffer
			must(t, WriteDiff(t.Context(), s.FS("top"), &diff, DiffOptions{}))
			got := entryNames(readTar(t, diff.Bytes()))
			want := []string{".wh.file", ".wh.file2", "dir/", "dir/.wh..wh..opq", "dir/new"}
			if !slices.Equal(got, want) {
				t.Errorf("WriteDiff(upper) names = %q, want %q", got, want)
			}

			// Apply the diff as a new layer and view it over base.
			must(t, s.Prepare("applied"))
			if _, err := Apply(t.Context(), s.FS("applied"), bytes.NewReader(diff.Bytes()), ApplyOptions{UserXattr: userXattr}); err != nil {
				t.Fatalf("Apply(diff) = %v", err)
			}
			must(t, s.Commit("applied"))
			var view []string
			err := s.WithMounts(t.Context(), [][]Mount{s.View([]string{"applied", "base"})}, func(roots []string) error {
				view = listTree(t, roots[0])
				return nil
			})
			if err != nil {
				t.Fatalf("WithMounts(View) = %v", err)
			}
			wantView := []string{". d---------", "dir d---------", "dir/new ----------=new",
				"keep d---------", "keep/x ----------=keep/x", "movedir d---------", "movedir/y ----------=movedir/y"}
			if !slices.Equal(view, wantView) {
				t.Errorf("View(applied, base) = %q, want %q", view, wantView)
			}
		})
	}
}
