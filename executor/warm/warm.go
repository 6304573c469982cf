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

// MaxKept is how many processes a Pool keeps, one per key: steps whose
// keys alternate (limits, network) each find theirs instead of replacing
// the one kept for the other with one that goes unused.
const MaxKept = 4

// Pool keeps started processes, at most one per key and MaxKept in all,
// for the next Take of their key.
type Pool struct {
	mu   sync.Mutex
	kept []*start // oldest first
	// gen counts Discards: a Start for an earlier one keeps nothing.
	gen uint64
	// evicting counts the discards under way of processes Start
	// replaced; Discard waits until none is (cond, on mu).
	evicting int
	cond     *sync.Cond
	users    int // Use
}

// start is one start, done when done is closed.
type start struct {
	key  string
	done chan struct{}
	proc *Proc
	err  error
}

// Make builds a process to start: its command, this process's ends of its
// pipes, and the child's ends, which are closed here once it started.
type Make func() (cmd *exec.Cmd, keep, child []*os.File, err error)

// Gen returns the pool's generation, which each Discard ends: pass it to
// a Start that may run after the Discard meant to end what it keeps.
func (p *Pool) Gen() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gen
}

// Start starts, in the background, the process mk makes and keeps it for
// the next Take of key, discarding the oldest kept when MaxKept are. It
// does nothing when one is kept for key already, or when the pool was
// discarded since Gen returned gen. started, if not nil, runs once the
// process started; if it fails, the process is discarded.
func (p *Pool) Start(gen uint64, key string, mk Make, started func(*Proc) error) {
	p.mu.Lock()
	if p.gen != gen || p.find(key) >= 0 {
		p.mu.Unlock()
		return
	}
	if len(p.kept) == MaxKept {
		old := p.kept[0]
		p.kept = p.kept[1:]
		p.evicting++
		go func() {
			discard(old)
			p.mu.Lock()
			p.evicting--
			p.wake().Broadcast()
			p.mu.Unlock()
		}()
	}
	s := &start{key: key, done: make(chan struct{})}
	p.kept = append(p.kept, s)
	p.mu.Unlock()
	spawn(func() { s.run(mk, started) })
}

// Use marks a use of p (a build) under way until done is called: when
// the last use under way ends, p is discarded.
func (p *Pool) Use() (done func()) {
	p.mu.Lock()
	p.users++
	p.mu.Unlock()
	return sync.OnceFunc(func() {
		// The generation ends under the lock that counts the last use
		// out: a build that begins right after it (Use, then Prepare's
		// Start) keeps its processes in the next generation, which the
		// ending of this one leaves alone.
		p.mu.Lock()
		p.users--
		last := p.users == 0
		var kept []*start
		if last {
			kept = p.detach()
		}
		p.mu.Unlock()
		if last {
			if testHookLastUse != nil {
				testHookLastUse()
			}
			p.end(kept)
		}
	})
}

// testHookLastUse, when set (by tests), runs once the last use under way
// ended, before the processes of its generation are ended.
var testHookLastUse func()

// wake returns p's condition; p.mu is held.
func (p *Pool) wake() *sync.Cond {
	if p.cond == nil {
		p.cond = sync.NewCond(&p.mu)
	}
	return p.cond
}

// find returns the index in p.kept of key's start, or -1; p.mu is held.
func (p *Pool) find(key string) int {
	for i, s := range p.kept {
		if s.key == key {
			return i
		}
	}
	return -1
}

func (s *start) run(mk Make, started func(*Proc) error) {
	defer close(s.done)
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
		return
	}
	proc := &Proc{Cmd: cmd, Files: keep}
	if started != nil {
		if s.err = started(proc); s.err != nil {
			proc.Discard()
			return
		}
	}
	s.proc = proc
}

// Take returns the process kept for key, waiting for its start if it is
// under way, or nil when there is none (or its start failed, or it died
// while it waited, e.g. killed from outside: the caller starts one
// itself, and reports a failure to as its own).
func (p *Pool) Take(key string) *Proc {
	p.mu.Lock()
	i := p.find(key)
	if i < 0 {
		p.mu.Unlock()
		return nil
	}
	s := p.kept[i]
	p.kept = append(p.kept[:i:i], p.kept[i+1:]...)
	p.mu.Unlock()
	<-s.done
	if s.proc != nil && exited(s.proc.Cmd.Process.Pid) {
		s.proc.Discard()
		return nil
	}
	return s.proc
}

// Kept returns the process last kept, once started, without taking it;
// nil when none is.
func (p *Pool) Kept() *Proc {
	p.mu.Lock()
	var s *start
	if n := len(p.kept); n > 0 {
		s = p.kept[n-1]
	}
	p.mu.Unlock()
	if s == nil {
		return nil
	}
	<-s.done
	return s.proc
}

// All returns the processes kept, once started, without taking them,
// once the processes Start replaced are discarded: what they had set up
// (their cgroups) is not left to be mistaken for a leak.
func (p *Pool) All() []*Proc {
	p.mu.Lock()
	p.waitEvicted()
	kept := append([]*start(nil), p.kept...)
	p.mu.Unlock()
	var all []*Proc
	for _, s := range kept {
		if <-s.done; s.proc != nil {
			all = append(all, s.proc)
		}
	}
	return all
}

// Discard ends every process kept and what a Start for the generation
// it ends would keep, and waits until they are reaped and undone, and
// the processes Start replaced too.
func (p *Pool) Discard() {
	p.mu.Lock()
	kept := p.detach()
	p.mu.Unlock()
	p.end(kept)
}

// detach ends p's generation and returns what it kept; p.mu is held.
func (p *Pool) detach() []*start {
	kept := p.kept
	p.kept = nil
	p.gen++
	return kept
}

// end discards kept, which detach returned, and waits for the processes
// Start replaced.
func (p *Pool) end(kept []*start) {
	for _, s := range kept {
		discard(s)
	}
	p.mu.Lock()
	p.waitEvicted()
	p.mu.Unlock()
}

// waitEvicted waits until no process Start replaced is being discarded;
// p.mu is held.
func (p *Pool) waitEvicted() {
	for p.evicting > 0 {
		p.wake().Wait()
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

// Pipes makes n pipes, as read and write end, one after the other; none
// when one fails.
func Pipes(n int) ([]*os.File, error) {
	p := make([]*os.File, 0, 2*n)
	for range n {
		r, w, err := os.Pipe()
		if err != nil {
			for _, f := range p {
				f.Close()
			}
			return nil, err
		}
		p = append(p, r, w)
	}
	return p, nil
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
		if err != nil {
			// As os/exec does: the process must not block on a full
			// pipe until it is killed.
			io.Copy(io.Discard, r)
		}
		done <- err
	}()
	return func() error { return <-done }
}
