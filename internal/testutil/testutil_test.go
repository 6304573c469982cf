package testutil

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// layerEntries reads the single layer of img into name -> header.
func layerEntries(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("image has %d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading layer: %v", err)
		}
		if _, dup := entries[h.Name]; dup {
			t.Errorf("duplicate tar entry %q", h.Name)
		}
		entries[h.Name] = h
	}
	return entries
}

// checkBusybox verifies an image (local or pulled back) has the promised
// config and file tree.
func checkBusybox(t *testing.T, img v1.Image) {
	t.Helper()
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	mt, err := img.MediaType()
	if err != nil || mt != types.OCIManifestSchema1 {
		t.Errorf("MediaType() = %q, %v, want %q", mt, err, types.OCIManifestSchema1)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform = %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	if want := []string{"PATH=" + BusyboxPATH}; !slices.Equal(cf.Config.Env, want) {
		t.Errorf("Env = %q, want %q", cf.Config.Env, want)
	}
	if want := []string{"sh"}; !slices.Equal(cf.Config.Cmd, want) {
		t.Errorf("Cmd = %q, want %q", cf.Config.Cmd, want)
	}
	if cf.RootFS.Type != "layers" || len(cf.RootFS.DiffIDs) != 1 {
		t.Errorf("rootfs = %+v, want one layers diff_id", cf.RootFS)
	}
	if len(cf.History) != 1 || cf.History[0].CreatedBy == "" || cf.History[0].EmptyLayer {
		t.Errorf("history = %+v, want one non-empty entry", cf.History)
	}

	entries := layerEntries(t, img)
	for _, tc := range []struct {
		name     string
		typ      byte
		mode     int64
		linkname string
	}{
		{"./", tar.TypeDir, 0o755, ""},
		{"bin/", tar.TypeDir, 0o755, ""},
		{"bin/busybox", tar.TypeReg, 0o755, ""},
		{"bin/sh", tar.TypeSymlink, 0o777, "busybox"},
		{"bin/ls", tar.TypeSymlink, 0o777, "busybox"},
		{"bin/false", tar.TypeSymlink, 0o777, "busybox"},
		{"etc/passwd", tar.TypeReg, 0o644, ""},
		{"etc/group", tar.TypeReg, 0o644, ""},
		{"root/", tar.TypeDir, 0o700, ""},
		{"tmp/", tar.TypeDir, 0o1777, ""},
	} {
		h, ok := entries[tc.name]
		if !ok {
			t.Errorf("layer has no %q", tc.name)
			continue
		}
		if h.Typeflag != tc.typ || h.Mode != tc.mode || h.Linkname != tc.linkname {
			t.Errorf("%s: type %q mode %#o link %q, want type %q mode %#o link %q",
				tc.name, h.Typeflag, h.Mode, h.Linkname, tc.typ, tc.mode, tc.linkname)
		}
	}
	if _, ok := entries["bin/busybox"]; ok && entries["bin/busybox"].Size < 100_000 {
		t.Errorf("bin/busybox is only %d bytes", entries["bin/busybox"].Size)
	}
	if len(entries) < 100 {
		t.Errorf("layer has %d entries, want the busybox applets too", len(entries))
	}
	for name, h := range entries {
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want 0:0", name, h.Uid, h.Gid)
		}
		if !h.ModTime.Equal(busyboxTime) {
			t.Errorf("%s mtime %v, want %v", name, h.ModTime, busyboxTime)
		}
	}
}

func TestBusyboxImage(t *testing.T) {
	img := BusyboxImage(t)
	checkBusybox(t, img)

	if again := BusyboxImage(t); again != img {
		t.Error("BusyboxImage is not cached per test binary")
	}
	// A fresh build gives the same digest: nothing depends on time or temp dirs.
	fresh, err := buildBusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := fresh.Digest()
	if d1 != d2 {
		t.Errorf("two builds of the busybox image: %s and %s, want equal digests", d1, d2)
	}
	l, _ := img.Layers()
	if mt, _ := l[0].MediaType(); mt != types.OCILayer {
		t.Errorf("layer media type %q, want %q", mt, types.OCILayer)
	}
}

func TestInProcessRegistry(t *testing.T) {
	t.Parallel()
	reg := InProcessRegistry(t)
	img := BusyboxImage(t)
	ref := reg + "/test/busybox:latest"
	PushImage(t, img, ref)

	pulled, err := remote.Image(mustRef(t, ref), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	sameDigest(t, img, pulled)
	checkBusybox(t, pulled)
}

func TestDistributionRegistry(t *testing.T) {
	const user, pass = "tester", "s3cret pass"
	reg := DistributionRegistry(t, user, pass)
	img := BusyboxImage(t)
	ref := reg + "/test/busybox:v1"
	PushImage(t, img, ref, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))

	for _, tc := range []struct {
		name string
		auth authn.Authenticator
	}{
		{"anonymous", authn.Anonymous},
		{"wrong password", &authn.Basic{Username: user, Password: "wrong"}},
	} {
		_, err := remote.Image(mustRef(t, ref), remote.WithContext(t.Context()), remote.WithAuth(tc.auth))
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s pull of %s: %v, want HTTP 401", tc.name, ref, err)
		}
	}

	// Credentials from a docker config, as the builder will read them.
	t.Setenv("DOCKER_CONFIG", DockerConfig(t, reg, user, pass))
	pulled, err := remote.Image(mustRef(t, ref), remote.WithContext(t.Context()),
		remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		t.Fatalf("pulling %s with DOCKER_CONFIG credentials: %v", ref, err)
	}
	sameDigest(t, img, pulled)
	checkBusybox(t, pulled)
}

func TestDockerConfig(t *testing.T) {
	dir := DockerConfig(t, "127.0.0.1:5000", "u", "p")
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("config.json: %v: %s", err, b)
	}
	// base64("u:p") = "dTpw"
	if got := cfg.Auths["127.0.0.1:5000"].Auth; got != "dTpw" {
		t.Errorf("auth for 127.0.0.1:5000 = %q, want %q; config.json: %s", got, "dTpw", b)
	}
}

func TestRequiresRoot(t *testing.T) {
	RequiresRoot(t)
	if os.Geteuid() != 0 {
		t.Fatal("RequiresRoot did not skip for a non-root user")
	}
}

func TestRequiresHostRoot(t *testing.T) {
	RequiresHostRoot(t)
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil || strings.Join(strings.Fields(string(b)), " ") != "0 0 4294967295" {
		t.Fatalf("RequiresHostRoot did not skip in a user namespace (uid_map %q, %v)", b, err)
	}
}

func mustRef(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sameDigest(t *testing.T, want, got v1.Image) {
	t.Helper()
	dw, err := want.Digest()
	if err != nil {
		t.Fatal(err)
	}
	dg, err := got.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if dw != dg {
		t.Errorf("pulled image digest %s, pushed %s", dg, dw)
	}
}

func TestRequireToolSkipsOutsideCI(t *testing.T) {
	t.Setenv("CI", "")
	skipped := false
	t.Run("missing tool", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		RequireTool(t, "no-such-tool-for-builder-tests", "no-such-package")
		t.Error("RequireTool returned for a missing tool")
	})
	if !skipped {
		t.Error("RequireTool did not skip for a missing tool with CI unset")
	}
	if got := RequireTool(t, "sh", "dash"); got == "" {
		t.Error(`RequireTool("sh") = "", want its path`)
	}
}
