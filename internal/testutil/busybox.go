// Package testutil holds helpers for tests across the repository: a busybox
// base image built from the host's busybox-static binary, an in-process
// registry, Debian's real docker-registry with htpasswd auth, docker
// config files, and privilege gates.
//
// Nothing here reaches the internet. Setup failures call t.Fatal; missing
// host tools skip outside CI and fail in CI (CI set in the environment), with
// the Debian package to install.
package testutil

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// BusyboxPath is the host binary BusyboxImage is made from.
const BusyboxPath = "/usr/bin/busybox"

// BusyboxPATH is the PATH in the config of BusyboxImage.
const BusyboxPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// busyboxTime is the mtime of every file and the creation time of the
// image, fixed so that the digest depends only on the busybox binary.
var busyboxTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// onceImage is an image built once per test binary and shared.
type onceImage struct {
	once sync.Once
	img  v1.Image
	err  error
}

// get builds the image on the first call, or fails the test naming what.
func (o *onceImage) get(t testing.TB, what string, build func() (v1.Image, error)) v1.Image {
	t.Helper()
	o.once.Do(func() { o.img, o.err = build() })
	if o.err != nil {
		t.Fatalf("building %s: %v", what, o.err)
	}
	return o.img
}

var busybox onceImage

// BusyboxImage returns a linux/amd64 OCI image with one gzip layer made from
// the host's busybox-static:
//
//	/            0755          /bin/busybox   0755
//	/bin/<applet> -> busybox   for every applet of `busybox --list`
//	/etc/passwd  root (uid 0, home /root, shell /bin/sh) and nobody (65534)
//	/etc/group   root (0) and nogroup (65534)
//	/root 0700, /tmp 1777, /dev /proc /sys 0755 (empty mount points)
//
// everything owned by 0:0 with fixed mtimes, so the digest is stable for a
// given binary. The config sets Env PATH=BusyboxPATH and Cmd ["sh"]. Busybox
// has no adduser/addgroup applets here: append to /etc/passwd and /etc/group.
//
// The image is built once per test binary and shared; treat it as read-only.
func BusyboxImage(t testing.TB) v1.Image {
	t.Helper()
	return busybox.get(t, "busybox base image", buildBusyboxImage)
}

func buildBusyboxImage() (v1.Image, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("%w (install it with `apt-get install busybox-static`)", err)
	}
	if err := checkStatic(BusyboxPath, elf.EM_X86_64, "linux/amd64"); err != nil {
		return nil, err
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", BusyboxPath, err)
	}
	return busyboxImage(bin, strings.Fields(string(out)), v1.Platform{OS: "linux", Architecture: "amd64"}, BusyboxPath)
}

// busyboxImage lays out BusyboxImage's file tree around bin for platform p;
// from names where bin came from in the layer's history.
func busyboxImage(bin []byte, applets []string, p v1.Platform, from string) (v1.Image, error) {
	layerTar, err := busyboxTar(bin, applets)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(layerTar); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	layer, err := newMemLayer(layerTar, gz.Bytes())
	if err != nil {
		return nil, fmt.Errorf("busybox layer: %w", err)
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: busyboxTime},
			CreatedBy: "testutil.BusyboxImage: busybox-static from " + from,
			Comment:   "test base image",
		},
		MediaType: types.OCILayer,
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: busyboxTime}
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Config.Env = []string{"PATH=" + BusyboxPATH}
	cf.Config.Cmd = []string{"sh"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	// Compute the manifest now, once, rather than racily in parallel tests.
	if _, err := img.Digest(); err != nil {
		return nil, err
	}
	return img, nil
}

// checkStatic rejects a busybox for another machine than platform's, and a
// dynamically linked one (Debian's "busybox" package), which cannot run
// inside an image without the host's libc.
func checkStatic(path string, machine elf.Machine, platform string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != machine {
		return fmt.Errorf("%s is for %v, the image is %s", path, f.Machine, platform)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; install `busybox-static` instead of `busybox`", path)
		}
	}
	return nil
}

// busyboxTar returns the uncompressed layer.
func busyboxTar(bin []byte, applets []string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(header(tar.TypeDir, name, mode))
	}
	file := func(name string, mode int64, data []byte) error {
		h := header(tar.TypeReg, name, mode)
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}

	steps := []func() error{
		func() error { return dir("./", 0o755) },
		func() error { return dir("bin/", 0o755) },
		func() error { return file("bin/busybox", 0o755, bin) },
	}
	seen := map[string]bool{"busybox": true}
	sort.Strings(applets)
	for _, a := range applets {
		if seen[a] || strings.Contains(a, "/") {
			continue
		}
		seen[a] = true
		steps = append(steps, func() error {
			h := header(tar.TypeSymlink, "bin/"+a, 0o777)
			h.Linkname = "busybox"
			return tw.WriteHeader(h)
		})
	}
	steps = append(steps,
		func() error { return dir("dev/", 0o755) },
		func() error { return dir("etc/", 0o755) },
		func() error {
			return file("etc/passwd", 0o644, []byte(
				"root:x:0:0:root:/root:/bin/sh\n"+
					"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
		},
		func() error {
			return file("etc/group", 0o644, []byte(
				"root:x:0:\n"+
					"nogroup:x:65534:\n"))
		},
		func() error { return dir("proc/", 0o755) },
		func() error { return dir("root/", 0o700) },
		func() error { return dir("sys/", 0o755) },
		func() error { return dir("tmp/", 0o1777) },
	)
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("writing busybox layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing busybox layer: %w", err)
	}
	return buf.Bytes(), nil
}

func header(typ byte, name string, mode int64) *tar.Header {
	return &tar.Header{
		Typeflag: typ,
		Name:     name,
		Mode:     mode,
		Uid:      0,
		Gid:      0,
		Uname:    "root",
		Gname:    "root",
		ModTime:  busyboxTime,
	}
}

// memLayer is an OCI gzip layer held in memory. (tarball.LayerFromOpener
// would do, but its descriptors carry an empty annotations map that
// validate.Image then finds missing from the manifest.)
type memLayer struct {
	uncompressed, compressed []byte
	digest, diffID           v1.Hash
}

var _ v1.Layer = (*memLayer)(nil)

func newMemLayer(uncompressed, compressed []byte) (*memLayer, error) {
	digest, _, err := v1.SHA256(bytes.NewReader(compressed))
	if err != nil {
		return nil, err
	}
	diffID, _, err := v1.SHA256(bytes.NewReader(uncompressed))
	if err != nil {
		return nil, err
	}
	return &memLayer{uncompressed: uncompressed, compressed: compressed, digest: digest, diffID: diffID}, nil
}

func (l *memLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *memLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *memLayer) Size() (int64, error)     { return int64(len(l.compressed)), nil }
func (l *memLayer) MediaType() (types.MediaType, error) {
	return types.OCILayer, nil
}

func (l *memLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.compressed)), nil
}

func (l *memLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.uncompressed)), nil
}
