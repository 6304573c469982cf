//go:build linux

package filecopy

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/builder-dev/builder/internal/archive"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/source/localctx"
	"golang.org/x/sys/unix"
)

func TestBatches(t *testing.T) {
	jobsOf := func(sizes ...int64) []fileJob {
		var js []fileJob
		for i, s := range sizes {
			j := fileJob{name: fmt.Sprint(i)}
			j.st.Size = s
			js = append(js, j)
		}
		return js
	}
	many := make([]int64, 200)
	for i := range many {
		many[i] = 2500
	}
	const mb = 10 << 20
	for _, tc := range []struct {
		name  string
		sizes []int64
		n     int
		want  []int // files in each batch
	}{
		{"none", nil, 4, []int{0}},
		{"few small files: one batch", []int64{10, 20, 30}, 4, []int{3}},
		{"one worker", many, 1, []int{200}},
		{"many small files: equal batches", many, 4, []int{50, 50, 50, 50}},
		{"big files each on a worker", []int64{mb, mb, mb, mb}, 4, []int{1, 1, 1, 1}},
		{"more workers than files", []int64{mb, mb}, 4, []int{1, 1}},
		{"one big file and many small ones", append([]int64{4 * mb}, many...), 2, []int{1, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jobs := jobsOf(tc.sizes...)
			parts := batches(jobs, tc.n)
			var got []int
			var names []string
			for _, p := range parts {
				got = append(got, len(p))
				for _, j := range p {
					names = append(names, j.name)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("batches(%d files, %d) sizes = %v, want %v", len(jobs), tc.n, got, tc.want)
			}
			var want []string
			for _, j := range jobs {
				want = append(want, j.name)
			}
			if !slices.Equal(names, want) {
				t.Errorf("batches(%d files, %d) = %v, want every file once, in order", len(jobs), tc.n, names)
			}
		})
	}
}

// TestCopyBatchesOwnersAndModes copies directories of enough files to be
// copied in parallel batches, whose files get their owner and mode from
// their create when the kernel gives the right ones: into a setgid
// directory of another group (whose group new files take), under a umask
// that takes bits off, with --chown, and with modes the umask keeps.
// Every file must end up as it would with a chown and chmod each.
func TestCopyBatchesOwnersAndModes(t *testing.T) {
	testutil.RequiresRoot(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	defer unix.Umask(unix.Umask(0o077))
	ctxDir := t.TempDir()
	modes := []os.FileMode{0o644, 0o755, 0o600, 0o666, 0o444, 0o700}
	for d := range 2 {
		sub := filepath.Join(ctxDir, fmt.Sprint("d", d))
		mustDo(t, os.Mkdir(sub, 0o755))
		for i := range 40 {
			p := filepath.Join(sub, fmt.Sprint("f", i))
			mustDo(t, os.WriteFile(p, make([]byte, 4000+i), 0o600), os.Chmod(p, modes[i%len(modes)]))
		}
	}
	for _, tc := range []struct {
		name  string
		chown *archive.Owner
	}{{"root", nil}, {"chown", &archive.Owner{UID: 1234, GID: 5678}}} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			// The destination: setgid, of group 4321.
			mustDo(t, os.Mkdir(filepath.Join(root, "data"), 0o755), os.Chown(filepath.Join(root, "data"), 0, 4321),
				os.Chmod(filepath.Join(root, "data"), os.ModeSetgid|0o775))
			tree, err := localctx.NewTree(ctxDir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := Copy(t.Context(), root, tree, llb.CopyOp{Sources: []string{"."}, Dest: "/data/"}, false, tc.chown); err != nil {
				t.Fatal(err)
			}
			uid, gid := 0, 0
			if tc.chown != nil {
				uid, gid = tc.chown.UID, tc.chown.GID
			}
			for d := range 2 {
				for i := range 40 {
					p := filepath.Join(root, "data", fmt.Sprint("d", d), fmt.Sprint("f", i))
					var st unix.Stat_t
					mustDo(t, unix.Lstat(p, &st))
					if int(st.Uid) != uid || int(st.Gid) != gid || os.FileMode(st.Mode&0o7777) != modes[i%len(modes)] || st.Size != int64(4000+i) {
						t.Errorf("%s: %d:%d mode %#o size %d, want %d:%d mode %#o size %d", p, st.Uid, st.Gid, st.Mode&0o7777, st.Size, uid, gid, modes[i%len(modes)], 4000+i)
					}
				}
			}
		})
	}
}
