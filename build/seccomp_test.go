package build_test

import (
	"archive/tar"
	"strings"
	"testing"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/internal/userns"
)

// TestSeccompInSteps builds a Dockerfile whose steps check Docker's
// seccomp profile: on by default, off for RUN --security=insecure with
// the entitlement, the review's unshare + mount refused, and tar, chown
// and mknod working; then `builder run` of the result is filtered too.
func TestSeccompInSteps(t *testing.T) {
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	// In a user namespace the kernel refuses device nodes, with or without
	// seccomp: a fifo stands in.
	dev := "c 1 3"
	if userns.Rootless() {
		dev = "p"
	}
	df := `FROM {{BASE}}
RUN grep Seccomp: /proc/self/status > /default
RUN --security=insecure grep Seccomp: /proc/self/status > /insecure
RUN { unshare -U -r -m mount -t tmpfs none /tmp; echo "exit $?"; } > /attack 2>&1
RUN set -e; mkdir -p /w/src /w/out; cd /w; echo data > src/f; chown 1000:2000 src/f; \
    mknod src/dev ` + dev + `; tar -cf a.tar src; tar -xf a.tar -C out; rm a.tar
`
	files, _ := mustBuild(t, st, base, writeContext(t, nil), df, build.Options{
		Allow: []string{build.EntitlementInsecure},
		Tags:  []string{"seccomp:1"},
	})
	checkContent(t, files, "default", "Seccomp:\t2")
	checkContent(t, files, "insecure", "Seccomp:\t0")
	if a := files["attack"].content; !strings.Contains(a, "Operation not permitted") || strings.Contains(a, "exit 0") {
		t.Errorf("unshare -U -r -m mount in a step printed %q, want EPERM", a)
	}
	if f := files["w/out/src/f"]; f.hdr == nil || f.hdr.Uid != 1000 || f.hdr.Gid != 2000 || f.content != "data\n" {
		t.Errorf("chowned file after tar round trip: %+v", f)
	}
	if d := files["w/out/src/dev"]; d.hdr == nil {
		t.Errorf("the mknod'ed node is not in the layer")
	} else if !userns.Rootless() && (d.hdr.Typeflag != tar.TypeChar || d.hdr.Devmajor != 1 || d.hdr.Devminor != 3) {
		t.Errorf("device node after tar round trip: type %c %d,%d, want a character device 1,3", d.hdr.Typeflag, d.hdr.Devmajor, d.hdr.Devminor)
	}

	if got := runImage(t, st, "seccomp:1", "grep", "Seccomp:", "/proc/self/status"); got != "Seccomp:\t2\n" {
		t.Errorf("builder run: %q, want Seccomp: 2", got)
	}
}

// TestSeccompAptGet installs a package from the Debian mirror with apt-get
// in a step under the profile: apt's privilege drop to _apt, dpkg's
// unpacking and maintainer scripts all run filtered. Gated by
// testutil.DebianEnv (it debootstraps Debian first).
func TestSeccompAptGet(t *testing.T) {
	img := testutil.DebianImage(t)
	testutil.RequiresRoot(t)
	base := testutil.InProcessRegistry(t) + "/debian:" + testutil.DebianSuite
	testutil.PushImage(t, img, base)
	st := openState(t, t.TempDir())
	df := `FROM {{BASE}}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q && apt-get install -y -q --no-install-recommends curl ca-certificates && \
    grep Seccomp: /proc/self/status > /seccomp && curl --version | head -n 1 > /curl-version
`
	files, ev := mustBuild(t, st, base, writeContext(t, nil), df, build.Options{})
	checkContent(t, files, "seccomp", "Seccomp:\t2")
	if v := files["curl-version"].content; !strings.HasPrefix(v, "curl ") {
		t.Errorf("curl --version after apt-get install printed %q\n%s", v, ev.logs.String())
	}
	if _, ok := files["usr/bin/curl"]; !ok {
		t.Errorf("usr/bin/curl is not in the step's layer")
	}
}

// TestStepSyncElided checks where the sync calls are elided: in a build's
// RUN steps but those with a writable cache mount (busybox's `sync FILE` fsyncs /dev/null, which fails with
// EINVAL when the call runs), not in them with $BUILDER_STEP_FSYNC=run,
// and never in `builder run`, whose container is not a layer that Commit
// makes durable.
func TestStepSyncElided(t *testing.T) {
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	df := `FROM {{BASE}}
RUN sync /dev/null 2>/dev/null; echo "sync $?" > /elided
RUN --mount=type=cache,target=/c sync /dev/null 2>/dev/null; echo "sync $?" > /cached
`
	files, _ := mustBuild(t, st, base, writeContext(t, nil), df, build.Options{Tags: []string{"sync:1"}})
	checkContent(t, files, "elided", "sync 0")
	// A writable cache's files outlive the step with no flush of their own.
	checkContent(t, files, "cached", "sync 1")
	if got := runImage(t, st, "sync:1", "sh", "-c", `sync /dev/null 2>/dev/null; echo "sync $?"`); got != "sync 1\n" {
		t.Errorf("builder run: %q, want sync 1 (the call ran)", got)
	}

	t.Setenv("BUILDER_STEP_FSYNC", "run")
	st = openState(t, t.TempDir())
	files, _ = mustBuild(t, st, base, writeContext(t, nil), df, build.Options{})
	checkContent(t, files, "elided", "sync 1")
}
