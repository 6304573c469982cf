// Package warm starts a process before it is needed and hands it over
// when it is: the next RUN step's sandbox init is started (execve and Go
// runtime start-up, several milliseconds, more on a loaded machine) while
// the current step runs and is committed, and only waits for its config.
//
// The processes are started by one thread that lives as long as the
// process (a goroutine locked to it that never returns), so that the
// Pdeathsig they were started with, which the kernel sends when the
// thread that forked them exits, fires only when this process exits.
package warm

import (
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
)

// Proc is a started process and this process's ends of its pipes.
type Proc struct {
	Cmd *exec.Cmd
	// Files are this process's ends of the pipes the process was given;
	// whoever takes the Proc owns them.
	Files []*os.File
	// Data is what Start's started set up for the process (the executor:
	// the cgroup it joined), and Undo undoes it once it was reaped.
	Data any
	Undo func()
}

// Discard kills p and reaps it, undoes what was set up for it and closes
// its files.
func (p *Proc) Discard() {
	p.Cmd.Process.Kill()
	p.Cmd.Wait()
	if p.Undo != nil {
		p.Undo()
	}
	for _, f := range p.Files {
		f.Close()
	}
}

// Pool keeps at most one started process, for the next Take of its key.
type Pool struct {
	mu   sync.Mutex
	key  string
	next *start // nil: none kept
}

// start is one start, done when done is closed.
type start struct {
	done chan struct{}
	proc *Proc
	err  error
}

// Make builds a process to start: its command, this process's ends of its
// pipes, and the child's ends, which are closed here once it started.
type Make func() (cmd *exec.Cmd, keep, child []*os.File, err error)

// Start starts, in the background, the process mk makes and keeps it for
// the next Take of key, discarding one kept for another key. It does
// nothing when one is kept for key already. started, if not nil, runs
// once the process started; if it fails, the process is discarded.
func (p *Pool) Start(key string, mk Make, started func(*Proc) error) {
	p.mu.Lock()
	if p.next != nil && p.key == key {
		p.mu.Unlock()
		return
	}
	if old := p.next; old != nil {
		go discard(old)
	}
	s := &start{done: make(chan struct{})}
	p.key, p.next = key, s
	p.mu.Unlock()
	spawn(func() {
		cmd, keep, child, err := mk()
		if err == nil {
			err = cmd.Start()
		}
		for _, f := range child {
			f.Close()
		}
		if err != nil {
			for _, f := range keep {
				f.Close()
			}
			s.err = err
			close(s.done)
			return
		}
		proc := &Proc{Cmd: cmd, Files: keep}
		if started != nil {
			if s.err = started(proc); s.err != nil {
				proc.Discard()
				proc = nil
			}
		}
		s.proc = proc
		close(s.done)
	})
}

// Take returns the process kept for key, waiting for its start if it is
// under way, or nil when there is none (or its start failed: the caller
// starts one itself, and reports that failure as its own).
func (p *Pool) Take(key string) *Proc {
	p.mu.Lock()
	s := p.next
	if s == nil || p.key != key {
		p.mu.Unlock()
		return nil
	}
	p.next = nil
	p.mu.Unlock()
	<-s.done
	if s.err != nil {
		return nil
	}
	// A process that died while it waited (killed from outside) fails
	// its config write or report, and Run reports that as a setup error.
	return s.proc
}

// Kept returns the process kept, once started, without taking it; nil
// when none is.
func (p *Pool) Kept() *Proc {
	p.mu.Lock()
	s := p.next
	p.mu.Unlock()
	if s == nil {
		return nil
	}
	<-s.done
	return s.proc
}

// Discard ends the process kept, if any, and waits until it is reaped
// and undone.
func (p *Pool) Discard() {
	p.mu.Lock()
	s := p.next
	p.next = nil
	p.mu.Unlock()
	if s != nil {
		discard(s)
	}
}

func discard(s *start) {
	<-s.done
	if s.proc != nil {
		s.proc.Discard()
	}
}

var (
	spawnOnce sync.Once
	spawns    chan func()
)

// spawn runs fn on the thread that starts every kept process.
func spawn(fn func()) {
	spawnOnce.Do(func() {
		// Buffered: a caller need not wait for the start before.
		spawns = make(chan func(), 4)
		go func() {
			// Never unlocked, and the goroutine never returns: the
			// thread, and the Pdeathsig of what it started, last as
			// long as the process.
			runtime.LockOSThread()
			for f := range spawns {
				f()
			}
		}()
	})
	spawns <- fn
}

// SameWriter is os/exec's test of whether a command's Stdout and Stderr
// share a pipe: equal interface values (and not when comparing panics).
func SameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// CopyOut copies r to w (io.Discard when nil) in the background, until
// r's EOF (every process holding the pipe's other end has exited); wait
// returns the copy's error once it ended.
func CopyOut(w io.Writer, r io.Reader) (wait func() error) {
	if w == nil {
		w = io.Discard
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(w, r)
		done <- err
	}()
	return func() error { return <-done }
}
