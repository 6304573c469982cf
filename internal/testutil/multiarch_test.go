package testutil

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestBusyboxIndexPushed(t *testing.T) {
	reg := InProcessRegistry(t)
	ref := reg + "/busybox:multi"
	PushIndex(t, BusyboxIndex(t), ref)

	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("validate.Index: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64/v8": elf.EM_AARCH64}
	if len(im.Manifests) != len(want) {
		t.Fatalf("index has %d manifests, want %d", len(im.Manifests), len(want))
	}
	for _, d := range im.Manifests {
		p := d.Platform.String()
		machine, ok := want[p]
		if !ok {
			t.Fatalf("index has platform %q, want one of %v", p, want)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cf.Platform().String(); got != p {
			t.Errorf("config of %s says %s", p, got)
		}
		if got := busyboxMachine(t, img); got != machine {
			t.Errorf("%s: /bin/busybox is for %v, want %v", p, got, machine)
		}
	}
}

// busyboxMachine reads /bin/busybox out of img's only layer.
func busyboxMachine(t *testing.T, img v1.Image) elf.Machine {
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no bin/busybox in the layer: %v", err)
		}
		if h.Name != "bin/busybox" {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return f.Machine
	}
}

// TestArm64BusyboxRunsEmulated runs the arm64 binary on the host through
// binfmt_misc, as a non-native RUN step will.
func TestArm64BusyboxRunsEmulated(t *testing.T) {
	BusyboxArm64Image(t)
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-aarch64"); err != nil {
		Missing(t, "qemu-aarch64 is not registered in binfmt_misc (apt-get install qemu-user-static binfmt-support; .ci/run registers it)")
	}
	out, err := exec.Command(arm64Busybox(t), "uname", "-m").CombinedOutput()
	if err != nil {
		t.Fatalf("arm64 busybox uname -m: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "aarch64" {
		t.Fatalf("arm64 busybox uname -m = %q, want aarch64", got)
	}
}
