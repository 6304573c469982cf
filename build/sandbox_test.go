package build_test

import (
	"archive/tar"
	"bytes"
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

// TestSandboxArchiveDeviceNotOpenable: a device node an ADD archive
// carries into the image cannot be opened by a later RUN step.
func TestSandboxArchiveDeviceNotOpenable(t *testing.T) {
	if userns.Rootless() {
		t.Skip("rootless: a user namespace cannot make device nodes, so no layer carries one")
	}
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "nodes/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "nodes/mem", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 1},
		{Name: "nodes/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "nodes/loop0", Typeflag: tar.TypeBlock, Mode: 0o666, Devmajor: 7, Devminor: 0},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	df := `FROM {{BASE}}
ADD nodes.tar /
RUN for n in mem null loop0; do test -c /nodes/$n -o -b /nodes/$n || echo "$n: not a device"; dd if=/nodes/$n of=/dev/null count=0 2>&1; done > /out; true
`
	files, _ := mustBuild(t, st, base, writeContext(t, map[string]string{"nodes.tar": buf.String()}), df, build.Options{})
	out := strings.TrimSpace(files["out"].content)
	lines := strings.Split(out, "\n")
	if len(lines) != 3 {
		t.Fatalf("RUN printed %q, want one error per node", out)
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, "Permission denied") {
			t.Errorf("%q: want open to fail with EACCES", l)
		}
	}
}
