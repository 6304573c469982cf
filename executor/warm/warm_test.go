package warm

import (
	"errors"
	"os"
	"os/exec"
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
	p.Start("a", cat, nil)
	first := pid(&p)
	p.Start("a", cat, nil) // kept already: no second start
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

	// A start for another key discards the one kept.
	p.Start("a", cat, nil)
	old := pid(&p)
	p.Start("b", cat, nil)
	if pid(&p) == 0 || pid(&p) == old {
		t.Fatalf("PID after a start for another key = %d (old %d)", pid(&p), old)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(old, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := syscall.Kill(old, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the process kept for the old key is still there (kill 0: %v)", err)
	}
	p.Take("b").Discard()

	// Discard ends the process kept, and what was set up for it.
	undone := false
	p.Start("c", cat, func(proc *Proc) error {
		proc.Undo = func() { undone = true }
		return nil
	})
	kept := pid(&p)
	p.Discard()
	if err := syscall.Kill(kept, 0); !errors.Is(err, syscall.ESRCH) || !undone || p.Take("c") != nil {
		t.Errorf("after Discard: kill 0 = %v, undone %v", err, undone)
	}
}

func TestPoolFailedStart(t *testing.T) {
	var p Pool
	var closed []*os.File
	p.Start("a", func() (*exec.Cmd, []*os.File, []*os.File, error) {
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
