package testutil

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// SearchOnlyDir makes a directory of mode 0311 (its owner may search and
// write it, not read it) owned by uid:uid, on a path others may search.
func SearchOnlyDir(t testing.TB, uid int) string {
	t.Helper()
	RequiresHostRoot(t) // to chown to uid
	tmp := t.TempDir()
	os.Chmod(filepath.Dir(tmp), 0o755)
	os.Chmod(tmp, 0o755)
	dir := filepath.Join(tmp, "d")
	if err := os.Mkdir(dir, 0o311); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o311); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// AsFSUser runs fn with uid:uid as the file-system ids of its thread
// (root only), which also drops the capabilities that override file
// permissions: fn must do its file work on the calling goroutine.
func AsFSUser(t testing.TB, uid int, fn func()) {
	t.Helper()
	RequiresHostRoot(t)
	runtime.LockOSThread()
	unix.Setfsgid(uid)
	unix.Setfsuid(uid)
	fn()
	// Back to root's ids, or the thread ends with the test goroutine.
	if unix.Setfsuid(0) == nil && unix.Setfsgid(0) == nil {
		runtime.UnlockOSThread()
	}
}
