package build

import (
	"context"
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

// KeptFailure is the filesystem of a failed RUN step kept by
// --on-error=keep, with what it takes to open a shell in it again: the
// step's command, environment, user, working directory, network and the
// RUN mounts that outlive the build (cache mounts, tmpfs). Its snapshot is
// a root for GC (it shows in du) until `builder prune` removes it.
type KeptFailure struct {
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

func (s *State) keptDir() string { return filepath.Join(s.Root, "kept") }

// KeepFailure keeps the failed step f's filesystem and records it; it
// returns the record's ID. It is the OnRunFailure of --on-error=keep.
func (s *State) KeepFailure(f ops.RunFailure) (string, error) {
	snap, err := f.Keep()
	if err != nil {
		return "", fmt.Errorf("keeping the failed step's filesystem: %w", err)
	}
	now := time.Now().UTC()
	k := KeptFailure{
		ID: now.Format("20060102T150405.000") + "-" + snap, Created: now, Step: f.Step, Error: f.Err.Error(), Snapshot: snap,
		Args: f.Spec.Args, Env: f.Spec.Env, Cwd: f.Spec.Cwd, User: f.Spec.User, Hostname: f.Spec.Hostname, Network: f.Spec.Network,
	}
	cacheMounts := filepath.Join(s.Root, "cachemounts") + string(filepath.Separator)
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
	if err := os.MkdirAll(s.keptDir(), 0o700); err != nil {
		return "", err
	}
	tmp := filepath.Join(s.keptDir(), "."+k.ID)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return "", fmt.Errorf("recording the kept failure: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.keptDir(), k.ID+".json")); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("recording the kept failure: %w", err)
	}
	return k.ID, nil
}

// KeptFailures lists the kept failures, newest first.
func (s *State) KeptFailures() ([]KeptFailure, error) {
	ents, err := os.ReadDir(s.keptDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []KeptFailure
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.keptDir(), e.Name()))
		if err != nil {
			return nil, err
		}
		var k KeptFailure
		if err := json.Unmarshal(b, &k); err != nil {
			return nil, fmt.Errorf("kept failure %s: %w", e.Name(), err)
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b KeptFailure) int { return strings.Compare(b.ID, a.ID) })
	return out, nil
}

// keptFailure finds a kept failure by ID, a unique part of one, or LAST.
func (s *State) keptFailure(ref string) (KeptFailure, error) {
	all, err := s.KeptFailures()
	if err != nil {
		return KeptFailure{}, err
	}
	if len(all) == 0 {
		return KeptFailure{}, errors.New("no failed step is kept: build with --on-error=keep")
	}
	if strings.EqualFold(ref, "last") || ref == "" {
		return all[0], nil
	}
	var match []KeptFailure
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
		return KeptFailure{}, fmt.Errorf("no kept failure %q (builder debug --list shows them)", ref)
	case 1:
		return match[0], nil
	}
	return KeptFailure{}, fmt.Errorf("kept failure %q is ambiguous: %d match", ref, len(match))
}

// removeKept forgets every kept failure; their snapshots are then garbage
// for the prune that follows.
func (s *State) removeKept() (int, error) {
	all, err := s.KeptFailures()
	if err != nil {
		return 0, err
	}
	for _, k := range all {
		if err := os.Remove(filepath.Join(s.keptDir(), k.ID+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
	}
	return len(all), nil
}

// DebugOptions describe `builder debug`.
type DebugOptions struct {
	// Ref names the kept failure: its ID, a unique part of one, or LAST.
	Ref string
	// Args is the command to run; /bin/sh when empty.
	Args           []string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Terminal says Stdin (an *os.File) is a terminal, for an interactive
	// shell that Ctrl-C reaches (see executor.Spec.Terminal).
	Terminal bool
	// Notice receives what the shell does not get (dropped mounts).
	Notice func(string)
}

// Debug runs a shell (or opt.Args) in a kept failure's filesystem, with the
// step's environment, user, working directory, network and lasting mounts,
// on a scratch layer removed afterwards: the kept state stays as it was.
func (s *State) Debug(ctx context.Context, opt DebugOptions) error {
	k, err := s.keptFailure(opt.Ref)
	if err != nil {
		return err
	}
	if len(k.Dropped) > 0 && opt.Notice != nil {
		opt.Notice(fmt.Sprintf("not mounted again (secrets, SSH agents and other stages' files are not kept): %s", strings.Join(k.Dropped, ", ")))
	}
	if !s.Snapshots.Exists(k.Snapshot) {
		return fmt.Errorf("kept failure %s: its layer is gone (a prune removed it)", k.ID)
	}
	args := opt.Args
	if len(args) == 0 {
		args = []string{"/bin/sh"}
	}
	return s.runScratch(ctx, k.Snapshot, "debug", executor.Spec{
		Args: args, Env: k.Env, Cwd: k.Cwd, User: k.User, Hostname: k.Hostname, Network: k.Network,
		RunMounts: k.Mounts, Stdin: opt.Stdin, Stdout: opt.Stdout, Stderr: opt.Stderr, Terminal: opt.Terminal,
	})
}
