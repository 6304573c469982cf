package build_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/userns"
)

// TestSandboxProcSymlinkRefused: a stage that makes /proc a symlink and a
// COPY --from that puts it at the root of the next stage used to leave
// /proc/sys writable by the next RUN (the masks went through the link, on
// the host). Now that RUN fails, naming its line and why, and nothing is
// written on the host. (The step writes core_pattern's own value back, so
// that a regression does not leave the host with a changed one.)
func TestSandboxProcSymlinkRefused(t *testing.T) {
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	host := "/builder-attack-" + strconv.Itoa(os.Getpid())
	df := `FROM {{BASE}} AS s
RUN mkdir -p /r` + host + `/sys/kernel && ln -s ` + host + ` /r/proc
FROM {{BASE}}
COPY --from=s /r/ /
RUN cat /proc/sys/kernel/core_pattern > /cp && cat /cp > /proc/sys/kernel/core_pattern
`
	_, ev, _, err := runBuild(t, st, base, writeContext(t, nil), df, build.Options{})
	if err == nil {
		t.Fatalf("build with /proc a symlink succeeded:\n%s", ev.logs.String())
	}
	for _, want := range []string{"Dockerfile:5", "/proc in the rootfs is a symlink", "/proc must be a plain directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("build error %q does not say %q", err, want)
		}
	}
	if _, err := os.Lstat(host); !errors.Is(err, os.ErrNotExist) {
		os.RemoveAll(host)
		t.Errorf("the build created %s on the host (Lstat: %v)", host, err)
	}
}

// TestSandboxMknodNotOpenable: a RUN step may make a device node (CAP_MKNOD
// stays, for dpkg and tar) but cannot open it: the rootfs is nodev.
func TestSandboxMknodNotOpenable(t *testing.T) {
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	df := `FROM {{BASE}}
RUN mknod /z c 1 3 2>/mknod.err; dd if=/z of=/dev/null count=0 2>/dd.err; rm -f /z
`
	files, _ := mustBuild(t, st, base, writeContext(t, nil), df, build.Options{})
	mknodErr, ddErr := strings.TrimSpace(files["mknod.err"].content), strings.TrimSpace(files["dd.err"].content)
	switch {
	case mknodErr == "" && strings.HasSuffix(ddErr, "Permission denied"):
		// EACCES on open: nodev.
	case userns.Rootless() && strings.HasSuffix(mknodErr, "Operation not permitted"):
		// EPERM: no mknod in a user namespace at all.
	default:
		t.Errorf("mknod: %q, open: %q; want open to fail with EACCES (rootless: mknod with EPERM)", mknodErr, ddErr)
	}
}
