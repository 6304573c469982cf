package coord

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// A process keeps a lease file in a state directory's leases/,
// <pid>-<random>, flocked exclusively until Close, so that a GC in another
// process spares what this process uses: the file's first line is the time it was opened, and
// each later line a key ("k sha256:...") or a snapshot ("s 12") that a
// lookup returned or an id this process reserved, or a blob ("b sha256:...")
// of an image a build exported. The cache package
// appends to it while it holds the database, and a prune reads the leases
// while it holds the database, so a record is either leased before a prune
// looks or gone when the lookup runs. A killed process's flock goes with
// it: its file is then stale, and the next reader removes it.

// LeaseFile is this process's lease on the state it uses.
type LeaseFile struct {
	mu    sync.Mutex
	f     *os.File
	path  string
	since time.Time
	seen  map[string]bool
}

// NewLeaseFile makes a lease file in dir.
func NewLeaseFile(dir string) (*LeaseFile, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating lease directory: %w", err)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(rnd[:])
	// Made under a name readers skip, and renamed once locked and
	// written: a reader that can lock a lease knows its holder is gone.
	tmp := filepath.Join(dir, ".new-"+name)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating lease: %w", err)
	}
	fail := func(err error) (*LeaseFile, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("creating lease %s: %w", tmp, err)
	}
	if err := flock(f, unix.LOCK_EX); err != nil {
		return fail(err)
	}
	now := time.Now().UTC()
	if _, err := f.WriteString(strconv.FormatInt(now.UnixNano(), 10) + "\n"); err != nil {
		return fail(err)
	}
	p := filepath.Join(dir, name)
	if err := os.Rename(tmp, p); err != nil {
		return fail(err)
	}
	return &LeaseFile{f: f, path: p, since: now, seen: map[string]bool{}}, nil
}

// Kinds of lease entries.
const (
	KindKey      = 'k'
	KindSnapshot = 's'
	KindBlob     = 'b'
)

// Add appends what is not in the lease yet. A lease must not lose an
// entry, so a failed write is an error for the lookup that needs it.
func (l *LeaseFile) Add(kind byte, names ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	var added []string
	for _, n := range names {
		e := string(kind) + " " + n
		if n == "" || l.seen[e] {
			continue
		}
		added = append(added, e)
		b.WriteString(e + "\n")
	}
	if b.Len() == 0 {
		return nil
	}
	if _, err := l.f.WriteString(b.String()); err != nil {
		return fmt.Errorf("writing lease %s: %w", l.path, err)
	}
	// Seen only once written: a retry after a failed write writes them.
	for _, e := range added {
		l.seen[e] = true
	}
	return nil
}

// Path is where the lease is.
func (l *LeaseFile) Path() string { return l.path }

// Close removes the lease.
func (l *LeaseFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Removed while still locked: a reader never takes a live lease for
	// a stale one.
	err := os.Remove(l.path)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Held is what a live lease protects.
type Held struct {
	Keys      []digest.Digest
	Snapshots []string
	Blobs     []digest.Digest
	// Since is when the lease was made.
	Since time.Time
}

// ReadLeases returns the live leases in dir but the one at own, removing
// those of processes that are gone.
func ReadLeases(dir, own string) ([]Held, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading leases: %w", err)
	}
	var out []Held
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if p == own {
			continue
		}
		if strings.HasPrefix(e.Name(), ".") {
			// Being made, or left by a process killed while making it
			// (which a minute tells apart).
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Minute {
				removeIfUnlocked(p)
			}
			continue
		}
		l, live, err := readLease(p)
		if err != nil {
			return nil, err
		}
		if live {
			out = append(out, l)
		}
	}
	return out, nil
}

// readLease reads the lease at p; live is false (and the file removed)
// when its holder is gone.
func readLease(p string) (l Held, live bool, err error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return l, false, nil // released meanwhile
	}
	if err != nil {
		return l, false, fmt.Errorf("reading lease: %w", err)
	}
	defer f.Close()
	if flock(f, unix.LOCK_SH|unix.LOCK_NB) == nil {
		removeLocked(f, p)
		return l, false, nil
	}
	sc := bufio.NewScanner(f)
	if sc.Scan() {
		if n, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
			l.Since = time.Unix(0, n).UTC()
		}
	}
	if l.Since.IsZero() {
		// Still being written: protect everything.
		l.Since = time.Unix(0, 0)
	}
	for sc.Scan() {
		kind, name, ok := strings.Cut(sc.Text(), " ")
		switch {
		case !ok:
		case kind == string(KindKey):
			l.Keys = append(l.Keys, digest.Digest(name))
		case kind == string(KindSnapshot):
			l.Snapshots = append(l.Snapshots, name)
		case kind == string(KindBlob):
			l.Blobs = append(l.Blobs, digest.Digest(name))
		}
	}
	if err := sc.Err(); err != nil {
		return l, false, fmt.Errorf("reading lease %s: %w", p, err)
	}
	return l, true, nil
}

// removeIfUnlocked removes the lease file at p if no process holds it.
func removeIfUnlocked(p string) {
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	if flock(f, unix.LOCK_SH|unix.LOCK_NB) == nil {
		removeLocked(f, p)
	}
}

// removeLocked removes p if it is still the file f, which the caller has
// locked: names are never reused, but a lease is removed by its holder
// too.
func removeLocked(f *os.File, p string) {
	if isFile(f, p) {
		os.Remove(p)
	}
}

// isFile says whether path p still names the open file f (a lock file's
// holder may have removed or replaced it while another waited for it).
func isFile(f *os.File, p string) bool {
	st, err := os.Stat(p)
	fst, ferr := f.Stat()
	return err == nil && ferr == nil && os.SameFile(st, fst)
}

// Leases are the leases of one opener of a state directory: one per build
// (New), and its own (Own) for what it does outside any build, made when
// first needed.
type Leases struct {
	Dir string
	mu  sync.Mutex
	own *LeaseFile
}

// New makes a lease, for one build; Close it when the build ends.
func (ls *Leases) New() (*LeaseFile, error) { return NewLeaseFile(ls.Dir) }

// Own returns the opener's own lease, making it if needed.
func (ls *Leases) Own() (*LeaseFile, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.own == nil {
		l, err := ls.New()
		if err != nil {
			return nil, err
		}
		ls.own = l
	}
	return ls.own, nil
}

// ReleaseOwn closes the opener's own lease, if it has one.
func (ls *Leases) ReleaseOwn() error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.own == nil {
		return nil
	}
	err := ls.own.Close()
	ls.own = nil
	return err
}

// Read returns the live leases but the opener's own (ReadLeases).
func (ls *Leases) Read() ([]Held, error) {
	ls.mu.Lock()
	own := ""
	if ls.own != nil {
		own = ls.own.path
	}
	ls.mu.Unlock()
	return ReadLeases(ls.Dir, own)
}
