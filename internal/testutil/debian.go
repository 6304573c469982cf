package testutil

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// DebianEnv gates the tests that need DebianImage: they download and
// install Debian from the host's apt mirror, which takes minutes.
const DebianEnv = "BUILDER_TEST_DEBIAN"

// DebianSuite is the release DebianImage installs.
const DebianSuite = "bookworm"

// DebianImage returns an image of a minimal Debian (debootstrap
// --variant=minbase DebianSuite) from the mirror the host's apt uses, with
// Env PATH=BusyboxPATH. It skips unless DebianEnv is set. The root
// filesystem is made once, as root, and kept as a tarball in the user's
// cache directory (builder-test/); delete it to refresh it.
func DebianImage(t testing.TB) v1.Image {
	t.Helper()
	if os.Getenv(DebianEnv) == "" {
		t.Skipf("set %s=1 to run: it installs Debian %s with debootstrap from the host's apt mirror (minutes)", DebianEnv, DebianSuite)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(cache, "builder-test", "debian-"+DebianSuite+"-minbase-"+runtime.GOARCH+".tar")
	if _, err := os.Stat(tarPath); err != nil {
		makeDebianTar(t, tarPath)
	}
	layer, err := tarball.LayerFromFile(tarPath)
	if err != nil {
		t.Fatalf("debian layer: %v", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Env = []string{"PATH=" + BusyboxPATH}
	cfg.Config.Cmd = []string{"bash"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

// makeDebianTar debootstraps into a temporary directory and tars it to
// dst, without the device nodes debootstrap makes in /dev (the sandbox
// brings its own).
func makeDebianTar(t testing.TB, dst string) {
	t.Helper()
	RequiresRoot(t)
	debootstrap := RequireTool(t, "debootstrap", "debootstrap")
	mirror, err := hostDebianMirror("/etc/apt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.MkdirTemp(filepath.Dir(dst), "rootfs-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	cmd := exec.CommandContext(t.Context(), debootstrap, "--variant=minbase", DebianSuite, root, mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debootstrap %s from %s: %v\n%s", DebianSuite, mirror, err, tail(out, 4000))
	}
	tmp := dst + ".tmp"
	cmd = exec.CommandContext(t.Context(), "tar", "--numeric-owner", "--exclude=./dev/*",
		"--exclude=./var/cache/apt/archives/*.deb", "-C", root, "-cf", tmp, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		t.Fatalf("tar of the debian rootfs: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// hostDebianMirror returns the first mirror that the apt sources under
// etcApt (deb822 .sources files, or one-line sources.list) list for
// DebianSuite.
func hostDebianMirror(etcApt string) (string, error) {
	files, _ := filepath.Glob(filepath.Join(etcApt, "sources.list.d", "*.sources"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for stanza := range strings.SplitSeq(string(b), "\n\n") {
			fields := deb822(stanza)
			if slices.Contains(strings.Fields(fields["types"]), "deb") &&
				slices.Contains(strings.Fields(fields["suites"]), DebianSuite) && fields["uris"] != "" {
				return strings.Fields(fields["uris"])[0], nil
			}
		}
	}
	lists, _ := filepath.Glob(filepath.Join(etcApt, "sources.list.d", "*.list"))
	for _, f := range append([]string{filepath.Join(etcApt, "sources.list")}, lists...) {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		s := bufio.NewScanner(fh)
		for s.Scan() {
			w := strings.Fields(s.Text())
			if len(w) > 1 && w[1][0] == '[' { // deb [options] uri suite ...
				for len(w) > 1 && !strings.HasSuffix(w[1], "]") {
					w = slices.Delete(w, 1, 2)
				}
				w = slices.Delete(w, 1, 2)
			}
			if len(w) >= 3 && w[0] == "deb" && w[2] == DebianSuite {
				fh.Close()
				return w[1], nil
			}
		}
		fh.Close()
	}
	return "", fmt.Errorf("no apt source for Debian %s under %s", DebianSuite, etcApt)
}

// deb822 reads the fields of one deb822 stanza, names lowercased;
// comment lines are skipped.
func deb822(stanza string) map[string]string {
	fields := map[string]string{}
	for line := range strings.SplitSeq(stanza, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
			fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return fields
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
