package snapshot

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// walkUsage is diskUsage as filepath.WalkDir and Lstat compute it: the
// reference that diskUsage must match.
func walkUsage(dir string) (int64, error) {
	seen := map[devIno]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if k := (devIno{uint64(st.Dev), st.Ino}); st.Nlink > 1 && !fi.IsDir() {
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

// TestDiskUsage: diskUsage counts directories, files, symlinks and each
// hard-linked inode once, as a WalkDir of the tree does, over more
// entries than one directory read returns.
func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	deep := filepath.Join(dir, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 1500 {
		if err := os.WriteFile(filepath.Join(dir, "a", "f"+strconv.Itoa(i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	big := filepath.Join(deep, "big")
	if err := os.WriteFile(big, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{filepath.Join(dir, "link1"), filepath.Join(deep, "link2")} {
		if err := os.Link(big, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a/b/c/big", filepath.Join(dir, "sym")); err != nil {
		t.Fatal(err)
	}
	want, err := walkUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := diskUsage(dir)
	if err != nil || got != want {
		t.Errorf("diskUsage = %d, %v; want %d (WalkDir)", got, err, want)
	}
	if want < 1<<20 || want > 2<<20+1600*8192 {
		t.Errorf("WalkDir total %d: the hard links are not counted once", want)
	}
}

// BenchmarkDiskUsage measures a large tree (BUILDER_USAGE_TREE, else
// /usr/share) with diskUsage and with the WalkDir reference.
func BenchmarkDiskUsage(b *testing.B) {
	dir := os.Getenv("BUILDER_USAGE_TREE")
	if dir == "" {
		dir = "/usr/share"
	}
	for name, fn := range map[string]func(string) (int64, error){"fstatat": diskUsage, "walkdir": walkUsage} {
		b.Run(name, func(b *testing.B) {
			var r0, r1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
			for b.Loop() {
				if _, err := fn(dir); err != nil {
					b.Skip(err)
				}
			}
			syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
			cpu := func(r syscall.Rusage) int64 { return r.Utime.Nano() + r.Stime.Nano() }
			b.ReportMetric(float64(cpu(r1)-cpu(r0))/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}

// TestDiskUsageDeepTree: a tree deeper than diskUsage's descriptor budget
// (a hostile RUN's) is measured under a descriptor limit just above that
// budget, and to the same total as WalkDir, siblings met on the way back
// up included.
func TestDiskUsageDeepTree(t *testing.T) {
	dir := t.TempDir()
	p := dir
	for i := range 5 * maxUsageFDs {
		if err := os.WriteFile(filepath.Join(p, "f"), make([]byte, 100*i), 0o644); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			if err := os.MkdirAll(filepath.Join(p, "e", "g"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		p = filepath.Join(p, "d")
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	want, err := walkUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(len(fds) + maxUsageFDs + 8)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	got, err := diskUsage(dir)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if err != nil || got != want {
		t.Errorf("diskUsage = %d, %v; want %d (WalkDir)", got, err, want)
	}
}
