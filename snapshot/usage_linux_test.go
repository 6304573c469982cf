package snapshot

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
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

// TestDiskUsageDeepTreeMemory: measuring a chain of 3,000 directories (a
// RUN's mkdir d; cd d loop) allocates a bounded amount per level. A path
// kept per level grows with the square of the depth: ~depth² bytes for
// "d/" a level, 9 MB here, 10 GB at 100,000 levels.
func TestDiskUsageDeepTreeMemory(t *testing.T) {
	const depth = 3000
	dir := t.TempDir()
	want := deepChain(t, dir, depth)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := diskUsage(dir)
	runtime.ReadMemStats(&after)
	if err != nil || got != want {
		t.Fatalf("diskUsage = %d, %v; want %d", got, err, want)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d levels: %d bytes allocated", depth, alloc)
	if alloc > depth*depth/2 {
		t.Errorf("diskUsage of a %d-deep tree allocated %d bytes, want at most %d", depth, alloc, depth*depth/2)
	}
}

// deepChain makes dir/d/d/... depth levels deep with a file f in every
// tenth, by descriptors (the paths pass PATH_MAX), and returns its usage
// as a walk down the chain counts it.
func deepChain(t *testing.T, dir string, depth int) int64 {
	t.Helper()
	descend := func(each func(fd, level int) error) {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		for level := 0; err == nil; level++ {
			if err = each(fd, level); err == nil && level < depth {
				var sub int
				sub, err = unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				unix.Close(fd)
				fd = sub
				continue
			}
			unix.Close(fd)
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	descend(func(fd, level int) error {
		if level%10 == 0 {
			f, err := unix.Openat(fd, "f", unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
			if err != nil {
				return err
			}
			_, err = unix.Write(f, make([]byte, 5000))
			unix.Close(f)
			if err != nil {
				return err
			}
		}
		if level < depth {
			return unix.Mkdirat(fd, "d", 0o755)
		}
		return nil
	})
	var total int64
	descend(func(fd, level int) error {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		total += st.Blocks * 512
		if level%10 == 0 {
			if err := unix.Fstatat(fd, "f", &st, 0); err != nil {
				return err
			}
			total += st.Blocks * 512
		}
		return nil
	})
	return total
}

// TestDiskUsageBigDir: a directory of 50,000 entries is read a chunk at a
// time, not whole (whole, its names held ~6 MB here, hundreds of MB for
// 10 million entries). Chains under it deeper than the descriptor budget
// close it mid-listing: it is reopened at the offset it had reached, and
// the total is WalkDir's, no entry skipped or counted twice.
func TestDiskUsageBigDir(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, make([]byte, 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 90)
	for i := range 50000 {
		if err := os.Link(target, filepath.Join(big, pad+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	for c := range 8 {
		p := filepath.Join(big, "c"+strconv.Itoa(c))
		for range maxUsageFDs + 6 {
			p = filepath.Join(p, "d")
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "f"), make([]byte, 5000*(c+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := walkUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got int64
	peak := peakHeap(func() { got, err = diskUsage(dir) })
	if err != nil || got != want {
		t.Errorf("diskUsage = %d, %v; want %d (WalkDir)", got, err, want)
	}
	t.Logf("50,000 entries: %d bytes of heap held at most", peak)
	if peak > 4<<20 {
		t.Errorf("diskUsage of a directory of 50,000 entries held %d bytes of heap, want at most %d", peak, 4<<20)
	}
}

// peakHeap runs f and returns the most heap held above what was live
// before, sampled by collecting garbage while f runs; f runs again until
// three samples are taken.
func peakHeap(f func()) uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	base, peak := m.HeapAlloc, uint64(0)
	for samples := 0; samples < 3; {
		done, taken := make(chan struct{}), make(chan int)
		go func() {
			var m runtime.MemStats
			for n := 0; ; n++ {
				select {
				case <-done:
					taken <- n
					return
				default:
				}
				runtime.GC()
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > base+peak {
					peak = m.HeapAlloc - base
				}
			}
		}()
		f()
		close(done)
		samples += <-taken
	}
	return peak
}
