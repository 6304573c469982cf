//go:build linux

package archive_test

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/builder-dev/builder/internal/archive"
	"github.com/builder-dev/builder/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestWriteDiffXattrs: a layer records a file's security.capability and
// no other xattr, as BuildKit's do (conformance case run_xattrs), so that
// the host's labels (security.selinux, trusted.*) never reach a layer's
// digest; an opaque directory's overlay xattr becomes its marker entry.
func TestWriteDiffXattrs(t *testing.T) {
	testutil.RequiresHostRoot(t)
	dir := t.TempDir()
	capv := make([]byte, 20)
	binary.LittleEndian.PutUint32(capv[0:], 0x02000001) // revision 2, effective
	binary.LittleEndian.PutUint32(capv[4:], 1<<13)      // CAP_NET_RAW
	// user 1000 rw- beside the owner, group and other entries.
	acl := []byte{2, 0, 0, 0}
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{1, 6, ^uint32(0)}, {2, 6, 1000}, {4, 4, ^uint32(0)}, {0x10, 6, ^uint32(0)}, {0x20, 4, ^uint32(0)}} {
		acl = binary.LittleEndian.AppendUint16(acl, e.tag)
		acl = binary.LittleEndian.AppendUint16(acl, e.perm)
		acl = binary.LittleEndian.AppendUint32(acl, e.id)
	}
	for _, p := range []string{"d", "o"} {
		if err := os.Mkdir(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// "e" is empty, so its xattrs are read by path; "f" has contents and
	// is read through a descriptor.
	for _, p := range []string{"d/e", "d/f"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(p[2:]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Truncate(filepath.Join(dir, "d/e"), 0); err != nil {
		t.Fatal(err)
	}
	set := func(p, name string, v []byte) {
		t.Helper()
		if err := unix.Lsetxattr(filepath.Join(dir, p), name, v, 0); err != nil {
			t.Fatalf("setting %s on %s: %v", name, p, err)
		}
	}
	for _, p := range []string{"d", "d/e", "d/f", "o"} {
		set(p, "user.note", []byte("hi"))
		set(p, "trusted.t", []byte("t"))
		set(p, "system.posix_acl_access", acl)
	}
	set("d", "system.posix_acl_default", acl)
	set("d/e", "security.capability", capv)
	set("d/f", "security.capability", capv)
	set("o", "trusted.overlay.opaque", []byte("y"))
	// An SELinux label, where the kernel lets one be set (an SELinux host
	// refuses an invalid one; without SELinux it is stored like any other).
	label := []byte("system_u:object_r:etc_t:s0\x00")
	selinux := unix.Lsetxattr(filepath.Join(dir, "d/f"), "security.selinux", label, 0)
	if selinux == nil {
		if err := unix.Lsetxattr(filepath.Join(dir, "d"), "security.selinux", label, 0); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("no security.selinux label on this kernel (%v): that part is not tested", selinux)
	}

	var buf bytes.Buffer
	if err := archive.WriteDiff(t.Context(), dir, &buf, archive.DiffOptions{}); err != nil {
		t.Fatalf("WriteDiff() = %v", err)
	}
	onlyCap := map[string]string{archive.PAXXattr + "security.capability": string(capv)}
	want := map[string]map[string]string{"d/": nil, "d/e": onlyCap, "d/f": onlyCap, "o/": nil, "o/.wh..wh..opq": nil}
	got := map[string]map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[hdr.Name] = nil
		for k, v := range hdr.PAXRecords {
			if k != "mtime" {
				if got[hdr.Name] == nil {
					got[hdr.Name] = map[string]string{}
				}
				got[hdr.Name][k] = v
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WriteDiff() PAX records (mtime aside) =\n %q\nwant\n %q", got, want)
	}
}
