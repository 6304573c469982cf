//go:build linux

package filecopy

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/builder-dev/builder/internal/archive"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/source/localctx"
	"golang.org/x/sys/unix"
)

// capNetRaw is what `setcap cap_net_raw+ep` writes: a version 2
// capability, effective, permitting CAP_NET_RAW.
const capNetRaw = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// setXattr sets name on p, skipping the test when the file system has no
// user xattrs (tmpfs before Linux 6.6).
func setXattr(t *testing.T, p, name, value string) {
	t.Helper()
	err := unix.Lsetxattr(p, name, []byte(value), 0)
	if errors.Is(err, unix.ENOTSUP) {
		t.Skipf("%s: the file system of %s has no xattrs", name, p)
	}
	if err != nil {
		t.Fatalf("setxattr %s %s: %v", name, p, err)
	}
}

// hostRoot reports whether the test runs as root of the initial user
// namespace, which alone may set trusted.* xattrs.
func hostRoot() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	return err == nil && os.Geteuid() == 0 && strings.Join(strings.Fields(string(b)), " ") == "0 0 4294967295"
}

// aclUser1000 is a POSIX ACL (system.posix_acl_access or _default)
// giving user 1000 rw- beside the owner, group and other entries.
const aclUser1000 = "\x02\x00\x00\x00" +
	"\x01\x00\x06\x00\xff\xff\xff\xff" + "\x02\x00\x06\x00\xe8\x03\x00\x00" + "\x04\x00\x04\x00\xff\xff\xff\xff" +
	"\x10\x00\x06\x00\xff\xff\xff\xff" + "\x20\x00\x04\x00\xff\xff\xff\xff"

// bigFiles is how many 40 KiB files with a capability xattrSource makes.
const bigFiles = 8

// xattrSource makes a source tree whose entries carry xattrs a copy must
// keep (user.*, a capability) and must not (overlay's own user.overlay.*,
// which in rootless mode would make a copied directory opaque or
// redirected; trusted.*; other security.*).
func xattrSource(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	mustDo(t, os.MkdirAll(filepath.Join(src, "bin"), 0o755), os.MkdirAll(filepath.Join(src, "d"), 0o755),
		os.WriteFile(filepath.Join(src, "bin/capbin"), []byte("cap"), 0o755),
		os.WriteFile(filepath.Join(src, "d/f"), []byte("f"), 0o644),
		os.Symlink("f", filepath.Join(src, "d/link")))
	capbin := filepath.Join(src, "bin/capbin")
	setXattr(t, capbin, "user.a", "1")
	setXattr(t, capbin, capabilityXattr, capNetRaw)
	setXattr(t, capbin, "security.test", "s")
	setXattr(t, capbin, "user.overlay.redirect", "/etc")
	setXattr(t, filepath.Join(src, "d"), "user.d", "dv")
	setXattr(t, filepath.Join(src, "d"), "user.overlay.opaque", "y")
	setXattr(t, filepath.Join(src, "d/f"), "user.f", "fv")
	setXattr(t, filepath.Join(src, "d/f"), aclAccessXattr, aclUser1000)
	// A second name of capbin: the link must not clear the capability.
	mustDo(t, os.Link(capbin, filepath.Join(src, "bin/caplink")))
	// Files enough for the copy to split into batches on other threads.
	mustDo(t, os.MkdirAll(filepath.Join(src, "big"), 0o755))
	for i := range bigFiles {
		p := filepath.Join(src, "big", fmt.Sprint(i))
		mustDo(t, os.WriteFile(p, make([]byte, 40<<10), 0o4755))
		setXattr(t, p, "user.a", "1")
		setXattr(t, p, capabilityXattr, capNetRaw)
	}
	// Its files, copied on other threads, must not inherit it.
	setXattr(t, filepath.Join(src, "big"), aclDefaultXattr, aclUser1000)
	if hostRoot() {
		setXattr(t, capbin, "trusted.t", "t")
		setXattr(t, filepath.Join(src, "d/link"), "trusted.l", "l")
	}
	return src
}

// TestCopyXattrsFromStage copies a tree from another stage (keepOwners),
// with --chown, which clears a file capability unless it is set after the
// owner: user.*, POSIX ACLs and security.capability are kept on files
// and directories (a directory's default ACL without its files inheriting
// it), the rest is not. From the build context nothing is.
func TestCopyXattrsFromStage(t *testing.T) {
	testutil.RequiresRoot(t)
	src := xattrSource(t)
	tree, err := localctx.NewTree(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantCap := map[string]string{"user.a": "1", capabilityXattr: capNetRaw}
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			root := t.TempDir()
			chown := &archive.Owner{UID: 1000, GID: 1000}
			mustDo(t, Copy(t.Context(), root, tree, llb.CopyOp{Sources: []string{"/"}, Dest: "/out/"}, true, chown),
				Copy(t.Context(), root, tree, llb.CopyOp{Sources: []string{"bin/capbin"}, Dest: "/single"}, true, nil))
			want := map[string]map[string]string{
				"out/bin/capbin":  wantCap,
				"out/bin/caplink": wantCap,
				"single":          wantCap,
				"out/d":           {"user.d": "dv"},
				"out/d/f":         {"user.f": "fv", aclAccessXattr: aclUser1000},
				"out/big":         {aclDefaultXattr: aclUser1000},
				"out/d/link":      {},
				// A new destination directory is made, not copied.
				"out": {},
			}
			for i := range bigFiles {
				want[fmt.Sprintf("out/big/%d", i)] = wantCap
			}
			for p, want := range want {
				if got := testutil.Xattrs(t, filepath.Join(root, p)); !maps.Equal(got, want) {
					t.Errorf("xattrs of %s = %q, want %q", p, got, want)
				}
			}
		})
	}
	t.Run("context", func(t *testing.T) {
		root := t.TempDir()
		mustDo(t, Copy(t.Context(), root, tree, llb.CopyOp{Sources: []string{"/"}, Dest: "/out/"}, false, nil))
		for _, p := range []string{"out/bin/capbin", "out/d", "out/d/f"} {
			if got := testutil.Xattrs(t, filepath.Join(root, p)); len(got) != 0 {
				t.Errorf("xattrs of %s copied from the context = %q, want none", p, got)
			}
		}
	})
}

// TestCopyXattrsMerge copies a directory onto an existing one: the
// directory keeps its own xattrs and gains the source's, as in BuildKit;
// a file replaced has only the new file's.
func TestCopyXattrsMerge(t *testing.T) {
	testutil.RequiresRoot(t)
	src, root := t.TempDir(), t.TempDir()
	mustDo(t, os.MkdirAll(filepath.Join(src, "m/sub"), 0o755), os.WriteFile(filepath.Join(src, "m/f"), []byte("new"), 0o644),
		os.MkdirAll(filepath.Join(root, "m/sub"), 0o755), os.WriteFile(filepath.Join(root, "m/f"), []byte("old"), 0o644))
	setXattr(t, filepath.Join(src, "m/sub"), "user.a", "1")
	setXattr(t, filepath.Join(src, "m/f"), "user.new", "n")
	setXattr(t, filepath.Join(root, "m/sub"), "user.b", "2")
	setXattr(t, filepath.Join(root, "m/f"), "user.old", "o")
	tree, err := localctx.NewTree(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustDo(t, Copy(t.Context(), root, tree, llb.CopyOp{Sources: []string{"m"}, Dest: "/m"}, true, nil))
	for p, want := range map[string]map[string]string{
		"m/sub": {"user.a": "1", "user.b": "2"},
		"m/f":   {"user.new": "n"},
	} {
		if got := testutil.Xattrs(t, filepath.Join(root, p)); !maps.Equal(got, want) {
			t.Errorf("xattrs of %s = %q, want %q", p, got, want)
		}
	}
}

// TestAppendXattrs checks what a checksum of a stage's files covers: the
// xattrs a copy keeps, in name order, so that the content key of a COPY
// --from changes with them and with nothing else.
func TestAppendXattrs(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	mustDo(t, os.WriteFile(f, []byte("x"), 0o755))
	got, err := AppendXattrs([]byte("p"), f, true)
	if err != nil || string(got) != "p" {
		t.Fatalf("AppendXattrs(no xattrs) = %q, %v; want %q", got, err, "p")
	}
	setXattr(t, f, "user.overlay.opaque", "y")
	setXattr(t, f, "security.test", "s")
	setXattr(t, f, "user.a", "1")
	setXattr(t, f, capabilityXattr, capNetRaw)
	want := "/" + capabilityXattr + "\x0020\x00" + capNetRaw + "/user.a\x001\x001"
	if got, err := AppendXattrs(nil, f, true); err != nil || string(got) != want {
		t.Errorf("AppendXattrs(file) = %q, %v; want %q", got, err, want)
	}
	if got, err := AppendXattrs(nil, f, false); err != nil || string(got) != "/user.a\x001\x001" {
		t.Errorf("AppendXattrs(not a regular file) = %q, %v; want only user.a", got, err)
	}

	// A stage tree's checksum, as COPY --from's content key takes it.
	tree, err := localctx.NewTree(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tree.Serial, tree.Xattrs = true, AppendXattrs
	sum := func() string {
		t.Helper()
		s, err := tree.Checksum("/", nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := sum()
	setXattr(t, f, "security.test", "other")
	if after := sum(); after != before {
		t.Errorf("checksum changed with an xattr the copy does not keep")
	}
	setXattr(t, f, capabilityXattr, capNetRaw[:5]+"\x30"+capNetRaw[6:])
	if after := sum(); after == before {
		t.Errorf("checksum unchanged after the file capability changed")
	}
	// The same mask (and so mode) for another user: only the ACL differs.
	setXattr(t, f, aclAccessXattr, aclUser1000)
	before = sum()
	setXattr(t, f, aclAccessXattr, strings.Replace(aclUser1000, "\xe8\x03", "\xe9\x03", 1))
	if after := sum(); after == before {
		t.Errorf("checksum unchanged after the file's ACL changed")
	}
}

// TestSetXattrsCapabilityError sets a capability the kernel refuses (a
// malformed one; rootless, one whose root user is not mapped): the error
// names the file, the xattr, and why.
func TestSetXattrsCapabilityError(t *testing.T) {
	testutil.RequiresRoot(t)
	p := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = setXattrs(int(f.Fd()), p, []xattr{{"user.a", "1"}, {capabilityXattr, capNetRaw[:7]}})
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), capabilityXattr) || !strings.Contains(err.Error(), "rootid") {
		t.Errorf("setXattrs(malformed capability) = %v; want EINVAL naming %s, the xattr and the rootid", err, p)
	}
}
