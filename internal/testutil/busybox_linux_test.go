package testutil

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestBusyboxImageRunsAsNobody unpacks the image and runs its shell in a
// chroot as uid 65534, which only works if / and /bin are 0755 and the
// applet symlinks resolve.
func TestBusyboxImageRunsAsNobody(t *testing.T) {
	RequiresRoot(t)
	rootfs := t.TempDir() // 0700, as a mktemp root would be; the layer fixes it
	extract(t, BusyboxImage(t), rootfs)

	cmd := exec.Command("/bin/sh", "-c", "id -u; ls -d /tmp; echo hi > /tmp/x && cat /tmp/x")
	cmd.Env = []string{"PATH=" + BusyboxPATH}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     rootfs,
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534},
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("sh in the busybox rootfs as nobody: %v\n%s", err, out.String())
	}
	if got, want := strings.Fields(out.String()), []string{"65534", "/tmp", "hi"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("output = %q, want %q", got, want)
	}
}

// extract is a minimal unpacker for the busybox layer (directories,
// regular files, symlinks), applying modes and ownership.
func extract(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsLocal(h.Name) {
			t.Fatalf("layer entry %q escapes the root", h.Name)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
				t.Fatal(err)
			}
			continue
		default:
			t.Fatalf("unexpected entry %q of type %q", h.Name, h.Typeflag)
		}
		if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
			t.Fatal(err)
		}
		// os.Chmod maps os.FileMode bits; h.FileInfo().Mode() carries sticky.
		if err := os.Chmod(p, h.FileInfo().Mode().Perm()|h.FileInfo().Mode()&os.ModeSticky); err != nil {
			t.Fatal(err)
		}
	}
}
