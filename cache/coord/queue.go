package coord

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Several processes share a state directory, but bbolt lets one process
// at a time open the database. So a Queue keeps it open only while no other
// process wants it: a transaction opens it, and it stays open, with its
// pages mapped, for as long as nobody else asks (a lone long-lived process,
// a server or a big build, keeps it warm), then closes. Processes queue on
// an flock of meta.db.lock, which the kernel hands over at once (bbolt's
// own lock polls every 50 ms). A process that waits also holds a shared
// lock on meta.db.want; the holder looks at it whenever its last
// transaction ends, and every Poll while it is idle, and closes as soon as
// it sees a waiter.

// Poll is how often a holder with no transaction running looks for other
// processes waiting for the database: another process waits about this
// long at most after our last transaction.
const Poll = 5 * time.Millisecond

// IdleClose is how long a holder keeps the database open with no
// transaction and nobody waiting, before closing it anyway so that an idle
// process stops polling.
const IdleClose = 2 * time.Second

// waitNotice is how long a wait for another process lasts before onWait
// is told.
const waitNotice = 200 * time.Millisecond

// Queue opens a bbolt database in turn with other processes; the
// transactions of one Queue share the open database.
type Queue struct {
	path  string
	mu    sync.Mutex
	b     *bolt.DB
	users int
	// idle polls for waiters while the database is open and unused (since
	// idleSince).
	idle      *time.Timer
	idleSince time.Time
	// lock is flocked exclusively while b is open; want is flocked shared
	// while this process waits for lock; probe tests whether others do.
	lock, want, probe *os.File
	onWait            func()
	waitedOnce        sync.Once
	closed            bool
}

// OpenQueue prepares to open the database at path in turn; onWait is
// called once if an open waits long for another process.
func OpenQueue(path string, onWait func()) (*Queue, error) {
	h := &Queue{path: path, onWait: onWait}
	var err error
	if h.lock, err = os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("opening the metadata lock: %w", err)
	}
	if h.want, err = os.OpenFile(path+".want", os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		h.probe, err = os.Open(path + ".want")
	}
	if err != nil {
		h.closeFiles()
		return nil, fmt.Errorf("opening the metadata lock: %w", err)
	}
	return h, nil
}

func (h *Queue) closeFiles() {
	for _, f := range []*os.File{h.lock, h.want, h.probe} {
		if f != nil {
			f.Close()
		}
	}
}

// flock is unix.Flock retried on EINTR.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

var errClosed = errors.New("metadata database is closed")

// Acquire opens the database if needed, waiting for other processes, and
// counts a user until Release.
func (h *Queue) Acquire() (*bolt.DB, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errClosed
	}
	if h.b == nil {
		if err := h.open(h.path); err != nil {
			return nil, err
		}
	}
	h.users++
	return h.b, nil
}

func (h *Queue) open(path string) error {
	// With others waiting, take our place among them: flock(2) wakes the
	// waiters when the holder unlocks, and a try here could take the lock
	// before they run, again and again.
	var err error = unix.EWOULDBLOCK
	if !h.othersWait() {
		err = flock(h.lock, unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		if err != unix.EWOULDBLOCK {
			return &os.PathError{Op: "flock", Path: h.lock.Name(), Err: err}
		}
		// Say that we wait, so that the holder hands the database over.
		if err := flock(h.want, unix.LOCK_SH); err != nil {
			return &os.PathError{Op: "flock", Path: h.want.Name(), Err: err}
		}
		notice := time.AfterFunc(waitNotice, h.noticeWait)
		err = flock(h.lock, unix.LOCK_EX)
		notice.Stop()
		flock(h.want, unix.LOCK_UN)
		if err != nil {
			return &os.PathError{Op: "flock", Path: h.lock.Name(), Err: err}
		}
	}
	// A builder from before these locks holds the database itself open
	// for a whole build.
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: waitNotice})
	if errors.Is(err, bolt.ErrTimeout) {
		h.noticeWait()
		b, err = bolt.Open(path, 0o600, nil)
	}
	if err != nil {
		flock(h.lock, unix.LOCK_UN)
		return fmt.Errorf("opening metadata database %s: %w", path, err)
	}
	h.b = b
	return nil
}

func (h *Queue) noticeWait() {
	if h.onWait != nil {
		h.waitedOnce.Do(h.onWait)
	}
}

// Release ends a use; the last one closes the database at once if another
// process waits for it, else leaves it open and polls for waiters.
func (h *Queue) Release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.users--
	if h.users > 0 || h.b == nil {
		return
	}
	// Errors of closing here reach no caller; bbolt's Close only
	// unmaps and unlocks, and a later open reports a damaged file.
	if h.othersWait() {
		h.shut()
		return
	}
	h.idleSince = time.Now()
	if h.idle == nil {
		h.idle = time.AfterFunc(Poll, h.poll)
	} else {
		h.idle.Reset(Poll)
	}
}

// poll closes the unused database if another process waits for it or it
// has been idle for IdleClose, else looks again after Poll.
func (h *Queue) poll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.users > 0 || h.b == nil {
		return // in use again (its Release polls anew), or closed
	}
	if h.othersWait() || time.Since(h.idleSince) >= IdleClose {
		h.shut()
		return
	}
	h.idle.Reset(Poll)
}

// othersWait reports whether another process waits for the database.
func (h *Queue) othersWait() bool {
	if flock(h.probe, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return true
	}
	flock(h.probe, unix.LOCK_UN)
	return false
}

// shut closes the database and lets the next process have it.
func (h *Queue) shut() error {
	err := h.b.Close()
	h.b = nil
	if uerr := flock(h.lock, unix.LOCK_UN); err == nil {
		err = uerr
	}
	return err
}

// Close closes the database for good.
func (h *Queue) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	if h.idle != nil {
		h.idle.Stop()
	}
	var err error
	if h.b != nil {
		err = h.shut()
	}
	h.closeFiles()
	return err
}
