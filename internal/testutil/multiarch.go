package testutil

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Arm64Platform is the platform of BusyboxArm64Image, variant included as
// Debian's and Docker's official arm64 images carry it.
var Arm64Platform = v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}

var busyboxArm64 onceImage

// BusyboxArm64Image returns BusyboxImage's file tree around Debian's
// busybox-static for arm64 (Arm64Platform). The package is fetched with
// `apt-get download busybox-static:arm64` from the host's apt sources (as
// root, the arm64 architecture is added to dpkg first if missing) and its
// busybox binary kept in the user's cache directory (builder-test/); delete
// it to refresh it. Without the package the test skips, or fails in CI.
//
// The applet links are those of the host's busybox --list: both come from
// the same Debian release. Running the image needs qemu-aarch64 registered
// in binfmt_misc (.ci/run does it).
func BusyboxArm64Image(t testing.TB) v1.Image {
	t.Helper()
	bin := arm64Busybox(t)
	return busyboxArm64.get(t, "arm64 busybox base image", func() (v1.Image, error) { return buildBusyboxArm64Image(bin) })
}

func buildBusyboxArm64Image(binPath string) (v1.Image, error) {
	if err := checkStatic(binPath, elf.EM_AARCH64, "linux/arm64"); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list (for the applet names): %w", BusyboxPath, err)
	}
	return busyboxImage(bin, strings.Fields(string(out)), Arm64Platform, "busybox-static:arm64")
}

// arm64Busybox returns the path of the cached arm64 busybox binary,
// downloading and extracting the Debian package the first time.
func arm64Busybox(t testing.TB) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "builder-test")
	bin := filepath.Join(dir, "busybox-static-arm64")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	aptGet := RequireTool(t, "apt-get", "apt")
	dpkgDeb := RequireTool(t, "dpkg-deb", "dpkg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(dir, "busybox-arm64-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if os.Geteuid() == 0 {
		// apt-get download as root drops to _apt, which must be able to
		// write the download directory.
		_ = os.Chmod(tmp, 0o777)
	}
	download := func() ([]byte, error) {
		cmd := exec.CommandContext(t.Context(), aptGet, "download", "-q", "busybox-static:arm64")
		cmd.Dir = tmp
		return cmd.CombinedOutput()
	}
	out, err := download()
	if err != nil && os.Geteuid() == 0 && addArm64Arch(t) {
		out, err = download()
	}
	if err != nil {
		Missing(t, fmt.Sprintf("apt-get download busybox-static:arm64: %v\n%s\n(as root: dpkg --add-architecture arm64 && apt-get update)", err, tail(out, 2000)))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "busybox-static_*_arm64.deb"))
	if len(debs) != 1 {
		t.Fatalf("apt-get download busybox-static:arm64 left %v in %s", debs, tmp)
	}
	root := filepath.Join(tmp, "root")
	if out, err := exec.Command(dpkgDeb, "-x", debs[0], root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v\n%s", debs[0], err, out)
	}
	// Rename into place so that concurrent test binaries never see half a file.
	if err := os.Rename(filepath.Join(root, "bin", "busybox"), bin); err != nil {
		t.Fatalf("busybox-static:arm64 has no /bin/busybox: %v", err)
	}
	return bin
}

// Missing ends a test that lacks something the host should provide: a skip
// outside CI, a failure in CI (CI set in the environment), as RequireTool.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so this is not a skip)")
	}
	t.Skip(msg)
}

// addArm64Arch adds arm64 to dpkg's architectures and updates the package
// lists, reporting whether it changed anything (false: it was there already).
func addArm64Arch(t testing.TB) bool {
	t.Helper()
	out, err := exec.Command("dpkg", "--print-foreign-architectures").Output()
	if err != nil || strings.Contains(string(out), "arm64") {
		return false
	}
	if out, err := exec.Command("dpkg", "--add-architecture", "arm64").CombinedOutput(); err != nil {
		t.Fatalf("dpkg --add-architecture arm64: %v\n%s", err, out)
	}
	if out, err := exec.CommandContext(t.Context(), "apt-get", "update", "-qq").CombinedOutput(); err != nil {
		t.Fatalf("apt-get update (after adding arm64): %v\n%s", err, tail(out, 2000))
	}
	return true
}

// BusyboxIndex returns an OCI image index of BusyboxImage (linux/amd64) and
// BusyboxArm64Image (linux/arm64/v8), with the platforms in the descriptors
// as a registry's multi-platform image has them.
func BusyboxIndex(t testing.TB) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, img := range []v1.Image{BusyboxImage(t), BusyboxArm64Image(t)} {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: cf.Platform()}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	if _, err := idx.Digest(); err != nil {
		t.Fatalf("busybox index: %v", err)
	}
	return idx
}

// PushIndex pushes idx, its manifests and blobs to ref, or fails the test.
func PushIndex(t testing.TB, idx v1.ImageIndex, ref string, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("PushIndex: %v", err)
	}
	opts = append([]remote.Option{remote.WithContext(t.Context())}, opts...)
	if err := remote.WriteIndex(r, idx, opts...); err != nil {
		t.Fatalf("pushing index %s: %v", ref, err)
	}
}
