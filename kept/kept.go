// Package kept keeps the filesystems of failed RUN steps (--on-error=keep)
// in a state directory, with what it takes to open a shell in them again,
// until a prune removes them.
package kept

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/solver/ops"
)

// Failure is the filesystem of a failed RUN step kept by
// --on-error=keep, with what it takes to open a shell in it again: the
// step's command, environment, user, working directory, network and the
// RUN mounts that outlive the build (cache mounts, tmpfs). Its snapshot is
// a root for GC (it shows in du) until `builder prune` removes it.
type Failure struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Step     string    `json:"step"`
	Error    string    `json:"error"`
	Snapshot string    `json:"snapshot"`
	Args     []string  `json:"args"`
	Env      []string  `json:"env"`
	Cwd      string    `json:"cwd,omitempty"`
	User     string    `json:"user,omitempty"`
	Hostname string    `json:"hostname,omitempty"`
	Network  string    `json:"network,omitempty"`
	Mounts   []executor.Mount
	// Dropped are the RUN mounts a later shell does not get (secrets, SSH
	// agents, other stages' files), by target.
	Dropped []string `json:"dropped,omitempty"`
}

// Store holds the records of the kept failures of a state directory.
type Store struct {
	// Dir is where the records are, one JSON file each.
	Dir string
	// CacheMounts is the directory of the state's cache mounts, which
	// outlive a build and so are mounted again in a kept failure.
	CacheMounts string
}

// Keep keeps the failed step f's filesystem and records it; it returns the
// record's ID. It is the OnRunFailure of --on-error=keep.
func (s *Store) Keep(f ops.RunFailure) (string, error) {
	snap, err := f.Keep()
	if err != nil {
		return "", fmt.Errorf("keeping the failed step's filesystem: %w", err)
	}
	now := time.Now().UTC()
	k := Failure{
		ID: now.Format("20060102T150405.000") + "-" + snap, Created: now, Step: f.Step, Error: f.Err.Error(), Snapshot: snap,
		Args: f.Spec.Args, Env: f.Spec.Env, Cwd: f.Spec.Cwd, User: f.Spec.User, Hostname: f.Spec.Hostname, Network: f.Spec.Network,
	}
	cacheMounts := s.CacheMounts + string(filepath.Separator)
	for _, m := range f.Spec.RunMounts {
		switch {
		case m.Type == executor.MountTmpfs, m.Type == executor.MountBind && strings.HasPrefix(m.Source, cacheMounts):
			k.Mounts = append(k.Mounts, m)
		default:
			k.Dropped = append(k.Dropped, m.Target)
		}
	}
	b, err := json.Marshal(k)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return "", err
	}
	tmp := filepath.Join(s.Dir, "."+k.ID)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return "", fmt.Errorf("recording the kept failure: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.Dir, k.ID+".json")); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("recording the kept failure: %w", err)
	}
	return k.ID, nil
}

// List lists the kept failures, newest first.
func (s *Store) List() ([]Failure, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Failure
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.Dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var k Failure
		if err := json.Unmarshal(b, &k); err != nil {
			return nil, fmt.Errorf("kept failure %s: %w", e.Name(), err)
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Failure) int { return strings.Compare(b.ID, a.ID) })
	return out, nil
}

// WriteList writes the kept failures as `builder debug --list` does: one
// "ID<tab>STEP<tab>ERROR" line each, newest first.
func (s *Store) WriteList(w io.Writer) error {
	kept, err := s.List()
	if err != nil {
		return err
	}
	for _, k := range kept {
		fmt.Fprintf(w, "%s\t%s\t%s\n", k.ID, k.Step, k.Error)
	}
	return nil
}

// Find finds a kept failure by ID, a unique part of one, or LAST.
func (s *Store) Find(ref string) (Failure, error) {
	all, err := s.List()
	if err != nil {
		return Failure{}, err
	}
	if len(all) == 0 {
		return Failure{}, errors.New("no failed step is kept: build with --on-error=keep")
	}
	if strings.EqualFold(ref, "last") || ref == "" {
		return all[0], nil
	}
	var match []Failure
	for _, k := range all {
		if k.ID == ref {
			return k, nil
		}
		if strings.Contains(k.ID, ref) {
			match = append(match, k)
		}
	}
	switch len(match) {
	case 0:
		return Failure{}, fmt.Errorf("no kept failure %q (builder debug --list shows them)", ref)
	case 1:
		return match[0], nil
	}
	return Failure{}, fmt.Errorf("kept failure %q is ambiguous: %d match", ref, len(match))
}

// RemoveAll forgets every kept failure; their snapshots are then garbage
// for the prune that follows. It returns how many there were.
func (s *Store) RemoveAll() (int, error) {
	all, err := s.List()
	if err != nil {
		return 0, err
	}
	for _, k := range all {
		if err := os.Remove(filepath.Join(s.Dir, k.ID+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
	}
	return len(all), nil
}
