// Package history keeps a compact record of each build in the state
// directory: when it ran, what it was asked to build, what it produced, and
// per step whether it ran or came from the cache, why, how long it took, and
// the tail of its output. Records are plain files, written once with an
// atomic rename, so reading them never waits for a running build, and the
// store is trimmed to a count and a size after every write.
package history

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Defaults for Store limits.
const (
	DefaultMaxRecords = 200
	DefaultMaxBytes   = 100 << 20
	// LogTail is how much of a step's output a record keeps.
	LogTail = 64 << 10
)

// Record is one build.
type Record struct {
	ID    string    `json:"id"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Args is the command line, with secret values removed.
	Args []string `json:"args"`
	// ContextDir and DockerfilePath are absolute paths ("" for stdin).
	ContextDir       string   `json:"contextDir"`
	DockerfilePath   string   `json:"dockerfilePath,omitempty"`
	DockerfileDigest string   `json:"dockerfileDigest"`
	Target           string   `json:"target,omitempty"`
	Platforms        []string `json:"platforms,omitempty"`
	Outputs          []string `json:"outputs,omitempty"`
	Tags             []string `json:"tags,omitempty"`
	// Digest is the image's manifest digest when the build succeeded.
	Digest string `json:"digest,omitempty"`
	// Error is the build's error when it failed.
	Error string `json:"error,omitempty"`
	Steps []Step `json:"steps"`
}

// Step is one vertex of the build.
type Step struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	// Status is "cached", "done", "failed" or "cancelled" (started, never
	// finished).
	Status   string        `json:"status"`
	Reason   string        `json:"reason,omitempty"`
	Duration time.Duration `json:"duration"`
	Error    string        `json:"error,omitempty"`
	// LogBytes is how much output the step printed; the record keeps at
	// most LogTail of it (see Store.Logs).
	LogBytes int64 `json:"logBytes,omitempty"`
	// Usage is what the step's processes used, where it was measured.
	Usage *Usage `json:"usage,omitempty"`
}

// Usage is a step's resource use, from its cgroup.
type Usage struct {
	CPU        time.Duration `json:"cpu"`
	PeakMemory uint64        `json:"peakMemory,omitempty"`
	ReadBytes  uint64        `json:"readBytes,omitempty"`
	WriteBytes uint64        `json:"writeBytes,omitempty"`
}

// Succeeded reports whether the build produced its image.
func (r *Record) Succeeded() bool { return r.Error == "" }

// Counts returns how many steps ran and how many came from the cache.
func (r *Record) Counts() (ran, cached int) {
	for _, s := range r.Steps {
		if s.Status == "cached" {
			cached++
		} else {
			ran++
		}
	}
	return ran, cached
}

// NewID returns a record ID that sorts by time: the start time to the
// millisecond and a random suffix.
func NewID(start time.Time) string {
	var b [3]byte
	rand.Read(b[:])
	return start.UTC().Format("20060102T150405.000") + "-" + hex.EncodeToString(b[:])
}

// Store is a history directory. The zero limits mean the defaults.
type Store struct {
	Dir        string
	MaxRecords int
	MaxBytes   int64
}

// A record ID is its file name: it must not name anything else.
func validID(id string) error {
	if id == "" || strings.ContainsAny(id, "/\\") || id == "." || id == ".." || strings.HasPrefix(id, ".") {
		return fmt.Errorf("invalid build record ID %q", id)
	}
	return nil
}

// A record is one file: the Record as one line of JSON, then the steps'
// log tails as a second line (a JSON object by step number), so listing
// reads only the first line and a build creates a single file.
func (s *Store) recordPath(id string) string { return filepath.Join(s.Dir, id+".json") }

// Add writes rec and its steps' log tails (by step index), then trims the
// store to its limits, oldest first.
func (s *Store) Add(rec *Record, logs map[int][]byte) error {
	if err := validID(rec.ID); err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("creating history directory: %w", err)
	}
	tails := make(map[string]string, len(logs))
	for i, l := range logs {
		if len(l) > LogTail {
			l = l[len(l)-LogTail:]
		}
		tails[fmt.Sprint(i)] = string(l)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	lb, err := json.Marshal(tails)
	if err != nil {
		return err
	}
	b = append(append(append(b, '\n'), lb...), '\n')
	path := s.recordPath(rec.ID)
	tmp := filepath.Join(s.Dir, "."+rec.ID+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing build record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing build record: %w", err)
	}
	return s.trim(int64(len(b)))
}

// ids returns the record IDs, oldest first.
func (s *Store) ids() ([]string, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading history directory: %w", err)
	}
	var ids []string
	for _, e := range ents {
		n := e.Name()
		if id, ok := strings.CutSuffix(n, ".json"); ok && !strings.HasPrefix(n, ".") {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids) // os.ReadDir sorts already; IDs sort by time
	return ids, nil
}

// List returns the records, newest first.
func (s *Store) List() ([]*Record, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	// Decoding dominates: read the records on every CPU.
	recs := make([]*Record, len(ids))
	var g errgroup.Group
	g.SetLimit(runtime.NumCPU())
	for i, id := range ids {
		g.Go(func() error {
			r, err := s.Get(id)
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			recs[len(ids)-1-i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(recs, func(r *Record) bool { return r == nil }), nil
}

// Resolve turns what a user typed into a record ID: a whole ID, a unique
// prefix or suffix of one, or LAST (also "last" or "^0"; "^N" is the Nth
// before the newest).
func (s *Store) Resolve(ref string) (string, error) {
	ids, err := s.ids()
	if err != nil {
		return "", err
	}
	if len(ids) == 0 {
		return "", errors.New("no builds recorded yet")
	}
	n := -1
	switch {
	case strings.EqualFold(ref, "last"):
		n = 0
	case strings.HasPrefix(ref, "^"):
		if _, err := fmt.Sscanf(ref, "^%d", &n); err != nil || n < 0 {
			return "", fmt.Errorf("build %q: want ^N, N >= 0", ref)
		}
	}
	if n >= 0 {
		if n >= len(ids) {
			return "", fmt.Errorf("build %q: only %d builds recorded", ref, len(ids))
		}
		return ids[len(ids)-1-n], nil
	}
	var match []string
	for _, id := range ids {
		if id == ref {
			return id, nil
		}
		if strings.HasPrefix(id, ref) || strings.HasSuffix(id, ref) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("no recorded build %q (see builder history)", ref)
	case 1:
		return match[0], nil
	}
	return "", fmt.Errorf("build %q is ambiguous: %d records match", ref, len(match))
}

// Get reads one record.
func (s *Store) Get(id string) (*Record, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	f, err := os.Open(s.recordPath(id))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r Record
	if err := json.NewDecoder(bufio.NewReader(f)).Decode(&r); err != nil {
		return nil, fmt.Errorf("build record %s: %w", id, err)
	}
	return &r, nil
}

// Logs returns the kept tail of step's output in build id.
func (s *Store) Logs(id string, step int) ([]byte, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	f, err := os.Open(s.recordPath(id))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	var r Record
	var tails map[string]string
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("build record %s: %w", id, err)
	}
	if err := dec.Decode(&tails); err != nil {
		return nil, fmt.Errorf("build record %s logs: %w", id, err)
	}
	return []byte(tails[fmt.Sprint(step)]), nil
}

// Remove deletes one record.
func (s *Store) Remove(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	return os.Remove(s.recordPath(id))
}

// Clear removes every record; it returns how many there were.
func (s *Store) Clear() (int, error) {
	ids, err := s.ids()
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		if err := s.Remove(id); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
	}
	return len(ids), nil
}

// trim removes the oldest records beyond MaxRecords, then until the
// directory holds at most MaxBytes. Counting costs one directory read;
// sizing costs a stat per file, so sizes are summed only when a record was
// removed by count, the new record is large, or on one write in eight
// (the bound may be overshot by a few records' worth meanwhile).
func (s *Store) trim(added int64) error {
	maxN, maxB := s.MaxRecords, s.MaxBytes
	if maxN <= 0 {
		maxN = DefaultMaxRecords
	}
	if maxB <= 0 {
		maxB = DefaultMaxBytes
	}
	ids, err := s.ids()
	if err != nil {
		return err
	}
	for len(ids) > maxN {
		if err := s.Remove(ids[0]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		ids = ids[1:]
	}
	var b [1]byte
	rand.Read(b[:])
	if added < maxB/64 && b[0]%8 != 0 {
		return nil
	}
	sizes := make([]int64, len(ids))
	var total int64
	for i, id := range ids {
		if fi, err := os.Stat(s.recordPath(id)); err == nil {
			sizes[i] = fi.Size()
		}
		total += sizes[i]
	}
	// The newest record always stays.
	for i := 0; i < len(ids)-1 && total > maxB; i++ {
		if err := s.Remove(ids[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		total -= sizes[i]
	}
	return nil
}
