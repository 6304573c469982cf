package warm

import (
	"errors"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cat makes a cat that echoes its stdin pipe to its stdout pipe: the
// caller keeps the pipe ends stdin's writer and stdout's reader.
func cat() (*exec.Cmd, []*os.File, []*os.File, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	cmd := exec.Command("cat")
	cmd.Stdin, cmd.Stdout = inR, outW
	return cmd, []*os.File{inW, outR}, []*os.File{inR, outW}, nil
}

func TestPool(t *testing.T) {
	var p Pool
	if p.Take("a") != nil || pid(&p) != 0 {
		t.Fatal("an empty pool gave a process")
	}
	p.Start(p.Gen(), "a", cat, nil)
	first := pid(&p)
	p.Start(p.Gen(), "a", cat, nil) // kept already: no second start
	if first == 0 || pid(&p) != first {
		t.Fatalf("PID after two starts of one key = %d, first %d", pid(&p), first)
	}
	if p.Take("b") != nil {
		t.Fatal("Take of another key gave the process")
	}
	proc := p.Take("a")
	if proc == nil || proc.Cmd.Process.Pid != first || p.Take("a") != nil {
		t.Fatalf("Take = %v, want the process started, once", proc)
	}
	// It was started, and its pipes handed over: it echoes.
	proc.Files[0].Write([]byte("hi"))
	proc.Files[0].Close()
	b := make([]byte, 2)
	if _, err := proc.Files[1].Read(b); err != nil || string(b) != "hi" {
		t.Errorf("read %q, %v from the process taken", b, err)
	}
	if err := proc.Cmd.Wait(); err != nil {
		t.Error(err)
	}
	proc.Files[1].Close()

	// A start for another key keeps both; one for a key beyond MaxKept
	// discards the oldest.
	p.Start(p.Gen(), "a", cat, nil)
	old := pid(&p)
	p.Start(p.Gen(), "b", cat, nil)
	if pid(&p) == 0 || pid(&p) == old {
		t.Fatalf("PID after a start for another key = %d (old %d)", pid(&p), old)
	}
	if syscall.Kill(old, 0) != nil {
		t.Fatal("a start for another key ended the process kept for the first")
	}
	for i := range MaxKept - 1 {
		p.Start(p.Gen(), string(rune('c'+i)), cat, nil)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(old, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := syscall.Kill(old, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the oldest process kept is still there after %d more keys (kill 0: %v)", MaxKept, err)
	}
	if p.Take("a") != nil {
		t.Error("Take gave the oldest process, discarded")
	}
	p.Take("b").Discard()
	p.Discard()

	// Discard ends the process kept, and what was set up for it.
	undone := false
	p.Start(p.Gen(), "c", cat, func(proc *Proc) error {
		proc.Undo = func() { undone = true }
		return nil
	})
	kept := pid(&p)
	p.Discard()
	if err := syscall.Kill(kept, 0); !errors.Is(err, syscall.ESRCH) || !undone || p.Take("c") != nil {
		t.Errorf("after Discard: kill 0 = %v, undone %v", err, undone)
	}
}

// TestPoolAlternatingKeys runs steps whose keys alternate, each taking
// the process kept for its key (or starting one itself) and starting the
// next: after the first of each key, every step finds one, and no
// process is started for nothing.
func TestPoolAlternatingKeys(t *testing.T) {
	var p Pool
	defer p.Discard()
	starts, cold := 0, 0
	counted := func() (*exec.Cmd, []*os.File, []*os.File, error) {
		starts++ // on the one spawning thread
		return cat()
	}
	const steps = 8
	for i := range steps {
		key := []string{"limits", "none"}[i%2]
		if proc := p.Take(key); proc != nil {
			proc.Discard()
		} else {
			cold++
		}
		p.Start(p.Gen(), key, counted, nil)
	}
	p.Discard()
	if cold != 2 || starts != steps {
		t.Errorf("%d steps of alternating keys: %d started without one kept, %d started ahead; want 2 and %d", steps, cold, starts, steps)
	}
}

// TestPoolDiscardEndsGeneration checks that a Start asked for before a
// Discard (a build's Prepare running late) keeps nothing, and that
// Discard waits for the processes Start replaced.
func TestPoolDiscardEndsGeneration(t *testing.T) {
	var p Pool
	gen := p.Gen()
	var undone atomic.Int32
	undo := func(proc *Proc) error {
		proc.Undo = func() { time.Sleep(20 * time.Millisecond); undone.Add(1) }
		return nil
	}
	for i := range MaxKept + 2 {
		p.Start(gen, string(rune('a'+i)), cat, undo)
	}
	p.Discard()
	if n := undone.Load(); n != MaxKept+2 {
		t.Errorf("Discard returned with %d of %d processes undone", n, MaxKept+2)
	}
	p.Start(gen, "late", cat, nil)
	if k := p.Kept(); k != nil {
		k.Discard()
		t.Error("a Start of the generation Discard ended kept a process")
	}
}

// TestPoolTakeDead checks that Take does not hand over a process that
// died while kept, and undoes what was set up for it.
func TestPoolTakeDead(t *testing.T) {
	var p Pool
	defer p.Discard()
	undone := false
	p.Start(p.Gen(), "a", cat, func(proc *Proc) error {
		proc.Undo = func() { undone = true }
		return nil
	})
	k := p.Kept()
	k.Cmd.Process.Signal(syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); !exited(k.Cmd.Process.Pid) && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	if proc := p.Take("a"); proc != nil || !undone {
		t.Errorf("Take of a process killed while kept = %v (undone %v), want nil", proc, undone)
	}
}

// TestCopyOutFailedWrite checks that a failed write does not leave the
// process blocked on a full pipe: the rest is drained.
func TestCopyOutFailedWrite(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("head", "-c", "4000000", "/dev/zero")
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	fail := errors.New("disk full")
	wait := CopyOut(funcWriter(func([]byte) (int, error) { return 0, fail }), r)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the writer exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the writer is blocked on the pipe after the copy's write failed")
	}
	if err := wait(); !errors.Is(err, fail) {
		t.Errorf("CopyOut's wait = %v, want %v", err, fail)
	}
}

func TestPoolFailedStart(t *testing.T) {
	var p Pool
	var closed []*os.File
	p.Start(p.Gen(), "a", func() (*exec.Cmd, []*os.File, []*os.File, error) {
		cmd, keep, child, err := cat()
		cmd.Path = "/nonexistent/cat"
		closed = append(keep, child...)
		return cmd, keep, child, err
	}, nil)
	if proc := p.Take("a"); proc != nil {
		t.Fatalf("Take after a failed start = %v", proc)
	}
	for _, f := range closed {
		if err := f.Close(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s not closed after the failed start (Close: %v)", f.Name(), err)
		}
	}
}

func TestSameWriter(t *testing.T) {
	if !SameWriter(os.Stdout, os.Stdout) || SameWriter(os.Stdout, os.Stderr) || SameWriter(nil, os.Stdout) || !SameWriter(nil, nil) {
		t.Error("SameWriter of files")
	}
	// Comparing two funcs panics: not the same, as os/exec says.
	if SameWriter(funcWriter(nil), funcWriter(nil)) {
		t.Error("SameWriter of values that cannot be compared is true")
	}
}

type funcWriter func([]byte) (int, error)

func (f funcWriter) Write(b []byte) (int, error) { return f(b) }

func pid(p *Pool) int {
	if k := p.Kept(); k != nil {
		return k.Cmd.Process.Pid
	}
	return 0
}

// TestPoolUse checks that the processes kept end with the last use under
// way (a build), not with one of two.
func TestPoolUse(t *testing.T) {
	var p Pool
	defer p.Discard()
	a, b := p.Use(), p.Use()
	p.Start(p.Gen(), "a", cat, nil)
	kept := pid(&p)
	a()
	a() // once
	if pid(&p) != kept {
		t.Fatalf("after one of two uses ended, the process kept is %d, want %d", pid(&p), kept)
	}
	b()
	if err := syscall.Kill(kept, 0); !errors.Is(err, syscall.ESRCH) || pid(&p) != 0 {
		t.Errorf("after the last use ended: kill 0 = %v, kept %d", err, pid(&p))
	}
}

// TestPoolUseOverlapping checks that a use (a build) that begins just as
// the last one under way ends keeps what it starts: ending the other's
// generation leaves it alone.
func TestPoolUseOverlapping(t *testing.T) {
	var p Pool
	defer p.Discard()
	a := p.Use()
	p.Start(p.Gen(), "a", cat, nil)
	old := pid(&p)
	var b func()
	testHookLastUse = func() {
		// After a's count reached zero, before its processes end: b
		// begins and starts one, as a build's Use and Prepare do.
		b = p.Use()
		p.Start(p.Gen(), "b", cat, nil)
		p.Kept() // started
	}
	a()
	testHookLastUse = nil
	if err := syscall.Kill(old, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the process of the use that ended: kill 0 = %v, want it ended", err)
	}
	proc := p.Take("b")
	if proc == nil {
		t.Fatal("the process started by a use that began as another ended was ended with the other's")
	}
	proc.Discard()
	b()
}

// TestPoolAllAfterEviction checks that All returns once the process a
// Start replaced is discarded and what was set up for it undone, not
// while its cgroup still exists beside the ones All lists.
func TestPoolAllAfterEviction(t *testing.T) {
	var p Pool
	defer p.Discard()
	var undone atomic.Int32
	slowUndo := func(proc *Proc) error {
		proc.Undo = func() { time.Sleep(200 * time.Millisecond); undone.Add(1) }
		return nil
	}
	for i := range MaxKept + 1 {
		p.Start(p.Gen(), string(rune('a'+i)), cat, slowUndo)
	}
	all := p.All()
	if n := undone.Load(); len(all) != MaxKept || n != 1 {
		t.Errorf("All after %d starts: %d processes, %d replaced undone; want %d and 1", MaxKept+1, len(all), n, MaxKept)
	}
}
