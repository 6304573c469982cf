package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/builder-dev/builder/cmd/builder/internal/imageload"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

// TestBuildxFlags builds with buildx's flags and reads each back: labels in
// the config, annotations on the manifest and its descriptor, the hosts
// file, /dev/shm's size and the ulimits a RUN step saw, -q's stdout.
func TestBuildxFlags(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	loadBusybox(t, c)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": `FROM busybox
RUN cat /etc/hosts > /hosts; df -k /dev/shm | tail -1 > /shm; ulimit -n > /nofile; ulimit -Hn >> /nofile
`})
	layout := filepath.Join(t.TempDir(), "layout")
	stdout, stderr, code := c.run("build", "-q", "-t", "flags:1",
		"--label", "org.example.a=1", "--label", "org.example.b=two",
		"--annotation", "org.example.m=manifest", "--annotation", "manifest-descriptor:org.example.d=desc",
		"--add-host", "db.example:10.1.2.3", "--add-host", "v6.example=fd00::1",
		"--shm-size", "128m", "--ulimit", "nofile=1024:2048",
		"-o", "type=oci,tar=false,dest="+layout, dir)
	if code != 0 {
		t.Fatalf("build exited %d: %s", code, stderr)
	}
	if !strings.HasPrefix(stdout, "sha256:") || strings.Count(stdout, "\n") != 1 || stderr != "" {
		t.Errorf("-q: stdout %q (want the digest alone), stderr %q (want nothing)", stdout, stderr)
	}
	var idx ocispec.Index
	readJSON(t, filepath.Join(layout, "index.json"), &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Annotations["org.example.d"] != "desc" || idx.Manifests[0].Digest.String() != strings.TrimSpace(stdout) {
		t.Fatalf("index.json %+v: want one descriptor, of digest %s, with org.example.d=desc", idx.Manifests, stdout)
	}
	var m ocispec.Manifest
	readJSON(t, filepath.Join(layout, "blobs", "sha256", idx.Manifests[0].Digest.Encoded()), &m)
	if m.Annotations["org.example.m"] != "manifest" || m.Annotations["org.example.d"] != "" {
		t.Errorf("manifest annotations %v, want org.example.m=manifest only", m.Annotations)
	}
	var cfg ocispec.Image
	readJSON(t, filepath.Join(layout, "blobs", "sha256", m.Config.Digest.Encoded()), &cfg)
	if cfg.Config.Labels["org.example.a"] != "1" || cfg.Config.Labels["org.example.b"] != "two" {
		t.Errorf("config labels %v", cfg.Config.Labels)
	}
	out, _, _ := c.run("run", "flags:1", "sh", "-c", "cat /hosts; echo ---; cat /shm; echo ---; cat /nofile")
	parts := strings.Split(out, "---\n")
	if len(parts) != 3 {
		t.Fatalf("run output %q", out)
	}
	if !strings.Contains(parts[0], "10.1.2.3\tdb.example\n") || !strings.Contains(parts[0], "fd00::1\tv6.example\n") {
		t.Errorf("RUN's /etc/hosts lacks the --add-host entries:\n%s", parts[0])
	}
	if f := strings.Fields(parts[1]); len(f) < 2 || f[1] != "131072" {
		t.Errorf("RUN's /dev/shm: %q, want 131072 KiB", parts[1])
	}
	if parts[2] != "1024\n2048\n" {
		t.Errorf("RUN's nofile limits %q, want 1024 and 2048", parts[2])
	}
	// The sandbox options are part of the step's identity.
	_, stderr, _ = c.run("build", "--progress", "plain", "--add-host", "db.example:10.1.2.4", "--shm-size", "128m", "--ulimit", "nofile=1024:2048", dir)
	if !strings.Contains(stderr, "DONE") {
		t.Errorf("another --add-host reused the cached step:\n%s", stderr)
	}
}

// TestBuildxFlagErrors: refused flags and bad values are errors naming the
// flag, never ignored.
func TestBuildxFlagErrors(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\n"})
	for _, tc := range []struct{ args, want string }{
		{"--cgroup-parent=/x", "--cgroup-parent is not supported"},
		{"--builder=b", "--builder is not supported"},
		{"--attest=type=vex", `--attest "type=vex"`},
		{"--sbom=generator=docker/buildkit-syft-scanner", "generator images are not supported"},
		{"--platform=linux/", "--platform"},
		{"--call=outline", "--call=outline is not supported"},
		{"--annotation=index:k=v", "index annotations need an image index"},
		{"--annotation=bogus:k=v", `unknown type "bogus"`},
		{"--add-host=nohost", "--add-host \"nohost\""},
		{"--add-host=h:not-an-ip", "is not an IP address"},
		{"--add-host=h:host-gateway", "host-gateway is not supported"},
		{"--shm-size=lots", "--shm-size"},
		{"--ulimit=nofile=x", "--ulimit"},
		{"--label==v", "--label"},
	} {
		_, stderr, code := c.run("build", tc.args, dir)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("build %s exited %d: %q, want an error with %q", tc.args, code, stderr, tc.want)
		}
	}
	// Accepted as buildx accepts them: the host platform, attestations off.
	for _, args := range [][]string{{"--provenance=false", "--sbom=false"}, {"--platform", "linux/amd64"}} {
		if _, stderr, code := c.run(append(append([]string{"build"}, args...), dir)...); code != 0 {
			t.Errorf("build %v: %s", args, stderr)
		}
	}
}

// TestPull: --pull resolves FROM from the registry even when the local
// store has the name.
func TestPull(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	loadBusybox(t, c)
	if _, stderr, code := c.run("tag", "busybox", "registry.invalid/busybox:1"); code != 0 {
		t.Fatal(stderr)
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM registry.invalid/busybox:1\nRUN true\n"})
	if _, stderr, code := c.run("build", dir); code != 0 {
		t.Fatalf("build from the local store: %s", stderr)
	}
	_, stderr, code := c.run("build", "--pull", dir)
	if code == 0 || !strings.Contains(stderr, "registry.invalid") {
		t.Errorf("build --pull exited %d, want a failure to reach registry.invalid: %s", code, stderr)
	}
}

// TestLoadPodman: --load puts the image into Podman (no Docker here), and
// podman runs it.
func TestLoadPodman(t *testing.T) {
	testutil.RequiresRoot(t)
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed (apt-get install podman)")
	}
	if os.Getenv("DOCKER_HOST") != "" || exists("/var/run/docker.sock") {
		t.Skip("a Docker daemon is present: --load would go there")
	}
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	loadBusybox(t, c)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo loaded-by-builder > /msg\nCMD [\"cat\", \"/msg\"]\n"})
	const ref = "localhost/builder-load-test:1"
	// imageload.Podman: a rootless run of this test is in builder's user
	// namespace, where plain podman would take itself for root.
	defer imageload.Podman(context.Background(), "rmi", "-f", ref).Run()
	_, stderr, code := c.run("build", "--load", "-t", ref, dir)
	if code != 0 || !strings.Contains(stderr, "loaded into Podman (podman load)") {
		t.Fatalf("build --load exited %d: %s", code, stderr)
	}
	// On this machine podman's default limits exceed what its runtime may
	// set, and crun refuses hybrid cgroups: runc with explicit limits runs.
	out, err := imageload.Podman(t.Context(), "--runtime", "runc", "run", "--rm", "--network=none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000", ref).CombinedOutput()
	if err != nil || string(out) != "loaded-by-builder\n" {
		t.Errorf("podman run %s: %v: %q", ref, err, out)
	}
	// Neither Docker nor Podman: an error naming both.
	cmd := exec.Command(c.bin, "--root", c.root, "build", "--load", dir)
	cmd.Env = []string{"PATH=/nonexistent"}
	out, _ = cmd.CombinedOutput()
	if !strings.Contains(string(out), "neither Docker") || !strings.Contains(string(out), "nor Podman") {
		t.Errorf("--load without docker or podman: %s", out)
	}
}

// TestBuildxCIScript runs testdata/buildx-ci.sh, a CI job written with
// buildx's documented flags, with builder in place of `docker buildx`, and
// checks what it made: the pushed image, metadata, OCI tarball and bake.
func TestBuildxCIScript(t *testing.T) {
	testutil.RequiresRoot(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("the script builds for --platform linux/amd64")
	}
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	reg := testutil.InProcessRegistry(t)
	testutil.PushImage(t, testutil.BusyboxImage(t), reg+"/base/busybox:1")
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile": `ARG BASE=busybox
FROM ${BASE} AS base
ARG VERSION
RUN --mount=type=secret,id=token test "$(cat /run/secrets/token)" = ci-token-value && echo "$VERSION" > /version
FROM base AS release
RUN grep docs.example /etc/hosts > /hosts-line; ulimit -Hn > /nofile
`,
		"docker-bake.hcl": `
group "default" { targets = ["app", "tools"] }
target "app" {
  target = "release"
  tags = ["ci-app:bake"]
  args = { VERSION = "bake" }
  secret = ["id=token,env=TOKEN"]
}
target "tools" {
  inherits = ["app"]
  tags = ["ci-tools:bake"]
}
`})
	script, err := filepath.Abs("testdata/buildx-ci.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BUILDX="+c.bin+" --root "+c.root, "REGISTRY="+reg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("buildx-ci.sh: %v\n%s", err, out)
	}
	var md map[string]any
	readJSON(t, filepath.Join(dir, "metadata.json"), &md)
	iid, _ := os.ReadFile(filepath.Join(dir, "iid.txt"))
	ociDigest, _ := os.ReadFile(filepath.Join(dir, "oci-digest.txt"))
	if md["containerimage.digest"] != string(iid) || strings.TrimSpace(string(ociDigest)) != string(iid) {
		t.Errorf("digests: metadata %v, iidfile %s, -q with the OCI output %s: want one image", md["containerimage.digest"], iid, ociDigest)
	}
	ref, err := name.ParseReference(reg + "/ci/app:1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref)
	if err != nil || desc.Digest.String() != string(iid) {
		t.Fatalf("pushed %s: %v, digest %v, want %s", ref, err, desc, iid)
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	m, _ := img.Manifest()
	if cfg.Config.Labels["org.opencontainers.image.source"] != "https://git.example/app" || m.Annotations["org.opencontainers.image.description"] != "built in CI" {
		t.Errorf("pushed image: labels %v, manifest annotations %v", cfg.Config.Labels, m.Annotations)
	}
	out, _, code := c.run("run", reg+"/ci/app:1.2.3", "cat", "/version", "/hosts-line", "/nofile")
	if code != 0 || out != "1.2.3\n10.0.0.1\tdocs.example\n2048\n" {
		t.Errorf("the image's files: %q", out)
	}
	var printed struct{ Target map[string]json.RawMessage }
	readJSON(t, filepath.Join(dir, "bake-print.json"), &printed)
	var bakeMD map[string]map[string]any
	readJSON(t, filepath.Join(dir, "bake-metadata.json"), &bakeMD)
	if len(printed.Target) != 2 || bakeMD["app"]["containerimage.digest"] == nil || bakeMD["tools"]["containerimage.digest"] == nil {
		t.Errorf("bake: printed %v, metadata %v", printed.Target, bakeMD)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
