package build_test

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/builder-dev/builder/internal/userns"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/output"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

const outputsDockerfile = `FROM {{BASE}}
RUN mkdir -p /opt/d /data && touch /opt/d/gone && echo hi > /data/f && chown 1000:1001 /data/f && chmod 0640 /data/f && \
    ln -s f /data/link && ln /data/f /data/hard && chmod 1777 /data
RUN rm -rf /opt/d && mkdir /opt/d && echo kept > /opt/d/kept && rm /bin/ls
CMD ["cat", "/data/f"]
`

// TestOutputs writes one build to every kind of output at once and reads
// each back.
func TestOutputs(t *testing.T) {
	base := busyboxBase(t)
	reg, _, _ := strings.Cut(base, "/")
	st := openState(t, t.TempDir())
	dir := t.TempDir()
	var outs []output.Spec
	for _, o := range []string{
		"type=image,name=local/app:1",
		"type=registry,name=" + reg + "/app:zstd,compression=zstd,force-compression=true",
		"type=image,name=" + reg + "/app:docker,push=true,oci-mediatypes=false",
		"type=oci,dest=" + filepath.Join(dir, "oci.tar"),
		"type=oci,dest=" + filepath.Join(dir, "oci-dir") + ",tar=false,compression=uncompressed",
		"type=docker,dest=" + filepath.Join(dir, "docker.tar"),
		"type=local,dest=" + filepath.Join(dir, "rootfs"),
		"type=tar,dest=" + filepath.Join(dir, "rootfs.tar"),
	} {
		out, err := output.Parse(o)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out)
	}
	ev := newEvents()
	res, err := st.Build(t.Context(), build.Options{
		ContextDir: writeContext(t, nil), Dockerfile: []byte(strings.ReplaceAll(outputsDockerfile, "{{BASE}}", base)),
		DockerfileName: "Dockerfile", Progress: ev, Tags: []string{"app:tagged"}, Outputs: outs,
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	// The result is the first image output's; its names are those it got
	// in the local store: its own and the -t names, which no image output
	// without name= took, stored with the default image (the same here).
	if want := []string{"local/app:1", "app:tagged"}; !reflect.DeepEqual(res.Names, want) {
		t.Errorf("Result.Names = %v, want %v", res.Names, want)
	}
	for _, n := range []string{"local/app:1", "app:tagged"} {
		if rec, err := st.Images.Image(n); err != nil || rec.Manifest.Digest != res.Manifest.Digest {
			t.Errorf("local store %s = %v, %v; want %s", n, rec.Manifest.Digest, err, res.Manifest.Digest)
		}
	}
	if rec, err := st.Images.Image(reg + "/app:zstd"); err != nil || rec.Manifest.Digest == res.Manifest.Digest {
		t.Errorf("local store %s/app:zstd = %v, %v; want the zstd image", reg, rec.Manifest.Digest, err)
	}

	// type=registry with zstd, every layer recompressed.
	zimg := pull(t, reg+"/app:zstd")
	testutil.CheckImage(t, "registry zstd", zimg)
	checkMediaTypes(t, zimg, types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayerZStd)
	// type=image,push=true with Docker media types.
	dimg := pull(t, reg+"/app:docker")
	testutil.CheckImage(t, "registry docker", dimg)
	checkMediaTypes(t, dimg, types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer)
	want, _ := zimg.ConfigName()
	if got, _ := dimg.ConfigName(); got != want {
		t.Errorf("docker-typed image config %s, zstd image config %s: want the same diff_ids and config", got, want)
	}

	// type=oci tar, named by -t.
	checkOCILayout(t, filepath.Join(dir, "oci.tar"), res.Manifest.Digest.String(), "app:tagged")
	// type=oci directory, uncompressed new layers.
	oimg := testutil.LayoutImage(t, filepath.Join(dir, "oci-dir"))
	if got, _ := oimg.ConfigName(); got != want {
		t.Errorf("uncompressed OCI layout config %s, want %s", got, want)
	}
	m, _ := oimg.Manifest()
	if mt := m.Layers[len(m.Layers)-1].MediaType; mt != types.OCIUncompressedLayer {
		t.Errorf("uncompressed OCI layout: top layer %s", mt)
	}

	// type=docker: what docker load reads.
	dockerTar := filepath.Join(dir, "docker.tar")
	tag, _ := name.NewTag("app:tagged")
	timg, err := tarball.ImageFromPath(dockerTar, &tag)
	if err != nil {
		t.Fatalf("reading the docker tar: %v", err)
	}
	testutil.CheckImage(t, "docker tar", timg)
	if got, _ := timg.ConfigName(); got != want {
		t.Errorf("docker tar config %s, want %s", got, want)
	}
	checkDockerTar(t, dockerTar, []string{"app:tagged"})
	// podman cannot run nested in builder's own user namespace (it needs
	// locks in the host's /dev/shm); the root run of the suite covers it.
	if !userns.Rootless() {
		podmanLoad(t, dockerTar, "app:tagged", "hi\n")
	}

	// type=local and type=tar: the final tree, whiteouts applied.
	root := filepath.Join(dir, "rootfs")
	checkTree(t, "local", func(p string) (treeFile, bool) {
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(root, p), &st) != nil {
			return treeFile{}, false
		}
		f := treeFile{mode: int64(st.Mode & 0o7777), uid: int(st.Uid), gid: int(st.Gid), nlink: int(st.Nlink)}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			f.link, _ = os.Readlink(filepath.Join(root, p))
		} else if st.Mode&unix.S_IFMT == unix.S_IFREG {
			b, _ := os.ReadFile(filepath.Join(root, p))
			f.content = string(b)
		}
		return f, true
	})
	entries := tarEntries(t, filepath.Join(dir, "rootfs.tar"))
	linked := map[string]bool{}
	for _, e := range entries {
		if e.hdr.Typeflag == tar.TypeLink {
			linked[e.hdr.Linkname] = true
		}
	}
	checkTree(t, "tar", func(p string) (treeFile, bool) {
		e, ok := entries[p]
		if !ok {
			e, ok = entries[p+"/"]
		}
		if !ok {
			return treeFile{}, false
		}
		f := treeFile{mode: e.hdr.Mode, uid: e.hdr.Uid, gid: e.hdr.Gid, content: e.content, link: e.hdr.Linkname, nlink: 1}
		if linked[p] {
			f.nlink = 2
		}
		if e.hdr.Typeflag == tar.TypeLink {
			f.nlink = 2 // a hard link
			f.content = entries[e.hdr.Linkname].content
			f.link = ""
		}
		return f, true
	})
}

type treeFile struct {
	mode          int64
	uid, gid      int
	content, link string
	nlink         int
}

// checkTree checks the final file tree of the outputs build.
func checkTree(t *testing.T, what string, stat func(p string) (treeFile, bool)) {
	t.Helper()
	for _, w := range []struct {
		path string
		f    treeFile
	}{
		{"data", treeFile{mode: 0o1777}},
		{"data/f", treeFile{mode: 0o640, uid: 1000, gid: 1001, content: "hi\n", nlink: 2}},
		{"data/hard", treeFile{mode: 0o640, uid: 1000, gid: 1001, content: "hi\n", nlink: 2}},
		{"opt/d/kept", treeFile{mode: 0o644, content: "kept\n", nlink: 1}},
		{"bin/busybox", treeFile{mode: 0o755, nlink: 1}},
		{"etc/passwd", treeFile{mode: 0o644, nlink: 1}},
	} {
		got, ok := stat(w.path)
		if !ok {
			t.Errorf("%s: /%s is missing", what, w.path)
			continue
		}
		if w.path == "bin/busybox" || w.path == "etc/passwd" {
			got.content = "" // only the mode is of interest
		}
		if w.path == "data" {
			got = treeFile{mode: got.mode}
		}
		if got != w.f {
			t.Errorf("%s: /%s = %+v, want %+v", what, w.path, got, w.f)
		}
	}
	if got, ok := stat("data/link"); !ok || got.link != "f" {
		t.Errorf("%s: /data/link = %+v, want a symlink to f", what, got)
	}
	for _, p := range []string{"opt/d/gone", "bin/ls", "opt/d/.wh..wh..opq", "bin/.wh.ls"} {
		if _, ok := stat(p); ok {
			t.Errorf("%s: /%s exists; a later layer removed it", what, p)
		}
	}
}

// checkMediaTypes checks the manifest's, the config's and the built
// layers' media types (the base layer may keep its own).
func checkMediaTypes(t *testing.T, img v1.Image, manifest, config, layer types.MediaType) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := img.MediaType(); mt != manifest || m.MediaType != manifest {
		t.Errorf("manifest media type %s (%s), want %s", mt, m.MediaType, manifest)
	}
	if m.Config.MediaType != config {
		t.Errorf("config media type %s, want %s", m.Config.MediaType, config)
	}
	for i, l := range m.Layers[1:] {
		if l.MediaType != layer {
			t.Errorf("layer %d media type %s, want %s", i+1, l.MediaType, layer)
		}
	}
}

// tarEntries reads a tar file: name -> header and content.
func tarEntries(t *testing.T, p string) map[string]imageFile {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]imageFile{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[hdr.Name] = imageFile{hdr: hdr, content: string(b)}
	}
}

// checkDockerTar checks a docker save tar's manifest.json, repositories
// and that each layer is an uncompressed tar.
func checkDockerTar(t *testing.T, p string, tags []string) {
	t.Helper()
	entries := tarEntries(t, p)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal([]byte(entries["manifest.json"].content), &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 1 || !reflect.DeepEqual(manifest[0].RepoTags, tags) {
		t.Fatalf("manifest.json = %+v, want one image tagged %v", manifest, tags)
	}
	if _, ok := entries[manifest[0].Config]; !ok {
		t.Errorf("docker tar lacks the config %s", manifest[0].Config)
	}
	for _, l := range manifest[0].Layers {
		e, ok := entries[l]
		if !ok {
			t.Errorf("docker tar lacks layer %s", l)
			continue
		}
		if _, err := tar.NewReader(strings.NewReader(e.content)).Next(); err != nil {
			t.Errorf("layer %s is not an uncompressed tar: %v", l, err)
		}
	}
	var repos map[string]map[string]string
	if err := json.Unmarshal([]byte(entries["repositories"].content), &repos); err != nil {
		t.Errorf("repositories: %v", err)
	}
}

// podmanLoad loads a docker tar with Debian's podman into a private store
// and runs the image with runc, expecting it to print want. It skips when
// podman is missing (fails in CI).
func podmanLoad(t *testing.T, archive, tag, want string) {
	t.Helper()
	podmanLoadWith(t, "vfs", archive, tag, want)
}
