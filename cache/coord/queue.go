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
// at a time open the database. So a Queue opens it only for short stretches:
// a transaction opens it, and it stays open while more transactions follow
// within Linger, then closes; a burst of transactions (a whole no-op
// rebuild is one) pays for one open. Processes queue on an flock of
// meta.db.lock, which the kernel hands over at once (bbolt's own lock
// polls every 50 ms). A process that waits also holds a shared lock on
// meta.db.want; the holder looks at it whenever its last transaction ends
// and then closes at once instead of lingering.

// Linger is how long the database stays open after a transaction, for the
// next one. Another process waits at most this long after our last
// transaction.
const Linger = 5 * time.Millisecond

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
	// gen counts acquisitions; the linger timer closes the database only
	// if none came since it was armed (at armed).
	gen, armed int
	idle       *time.Timer
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
	h.gen++ // a pending linger must not close it now
	return h.b, nil
}

func (h *Queue) open(path string) error {
	if err := flock(h.lock, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if err != unix.EWOULDBLOCK {
			return &os.PathError{Op: "flock", Path: h.lock.Name(), Err: err}
		}
		// Say that we wait, so that the holder does not linger.
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
// process waits for it, else after Linger.
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
	h.armed = h.gen
	if h.idle == nil {
		h.idle = time.AfterFunc(Linger, h.lingered)
	} else {
		h.idle.Reset(Linger)
	}
}

func (h *Queue) lingered() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gen == h.armed && h.users == 0 && h.b != nil {
		h.shut()
	}
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
