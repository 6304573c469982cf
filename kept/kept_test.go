package kept_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/kept"
	"github.com/builder-dev/builder/solver/ops"
)

func failure(snap string) ops.RunFailure {
	return ops.RunFailure{
		Step: "[2/3] RUN make", Err: errors.New("exit code 2"),
		Spec: executor.Spec{Args: []string{"/bin/sh", "-c", "make"}, Env: []string{"A=b"}, Cwd: "/src", User: "1000"},
		Keep: func() (string, error) { return snap, nil },
	}
}

// TestStore keeps failures, lists them newest first, finds them by a part
// of their ID and forgets them all.
func TestStore(t *testing.T) {
	dir := t.TempDir()
	s := &kept.Store{Dir: filepath.Join(dir, "kept"), CacheMounts: filepath.Join(dir, "cachemounts")}
	if all, err := s.List(); err != nil || len(all) != 0 {
		t.Fatalf("List() of a new state = %v, %v; want none", all, err)
	}
	if _, err := s.Find("last"); err == nil || !strings.Contains(err.Error(), "--on-error=keep") {
		t.Errorf("Find(last) with none kept = %v, want an error saying how to keep one", err)
	}

	f := failure("snap-a")
	f.Spec.RunMounts = []executor.Mount{
		{Type: executor.MountBind, Source: filepath.Join(dir, "cachemounts", "go"), Target: "/root/.cache"},
		{Type: executor.MountTmpfs, Target: "/tmp"},
		{Type: executor.MountBind, Source: "/run/secrets/token", Target: "/run/secrets/token"},
	}
	first, err := s.Keep(f)
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Keep(failure("snap-b"))
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.List()
	if err != nil || len(all) != 2 || all[1].ID != first || all[0].ID != second {
		t.Fatalf("List() = %+v, %v; want %s then %s", all, err, second, first)
	}
	k := all[1]
	if k.Snapshot != "snap-a" || k.Step != f.Step || k.Error != "exit code 2" || k.Cwd != "/src" || k.User != "1000" {
		t.Errorf("kept %+v, want the step's snapshot, name, error, cwd and user", k)
	}
	// Cache mounts and tmpfs outlive the build; a secret does not.
	var targets []string
	for _, m := range k.Mounts {
		targets = append(targets, m.Target)
	}
	if !slices.Equal(targets, []string{"/root/.cache", "/tmp"}) || !slices.Equal(k.Dropped, []string{"/run/secrets/token"}) {
		t.Errorf("kept mounts %v, dropped %v; want the cache mount and the tmpfs kept, the secret dropped", targets, k.Dropped)
	}

	for ref, want := range map[string]string{"last": second, "LAST": second, first: first, "snap-a": first} {
		if got, err := s.Find(ref); err != nil || got.ID != want {
			t.Errorf("Find(%q) = %s, %v; want %s", ref, got.ID, err, want)
		}
	}
	if _, err := s.Find("snap-"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("Find(snap-) = %v, want an ambiguous match", err)
	}
	if _, err := s.Find("nope"); err == nil {
		t.Error("Find(nope) found a failure")
	}

	if n, err := s.RemoveAll(); err != nil || n != 2 {
		t.Errorf("RemoveAll() = %d, %v; want 2", n, err)
	}
	if all, err := s.List(); err != nil || len(all) != 0 {
		t.Errorf("List() after RemoveAll = %v, %v; want none", all, err)
	}
}
