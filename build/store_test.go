package build_test

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/source"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// storeBuild builds dockerfile ({{BASE}} is base) on st with the given tags.
func storeBuild(t *testing.T, st *build.State, base, dockerfile string, tags ...string) *build.Result {
	t.Helper()
	ev := newEvents()
	res, err := st.Build(t.Context(), build.Options{
		ContextDir: writeContext(t, nil), Dockerfile: []byte(strings.ReplaceAll(dockerfile, "{{BASE}}", base)),
		DockerfileName: "Dockerfile", Progress: ev, Tags: tags,
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	return res
}

func storeNames(t *testing.T, st *build.State) []string {
	t.Helper()
	imgs, err := st.DB.Images()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	return names
}

// TestLocalStore tags, pushes, saves, loads and removes images, builds FROM
// an image that only the local store has, and runs loaded images.
func TestLocalStore(t *testing.T) {
	base := busyboxBase(t)
	reg, _, _ := strings.Cut(base, "/")
	root := t.TempDir()
	st := openState(t, root)
	res := storeBuild(t, st, base, "FROM {{BASE}}\nRUN echo made > /made\nCMD [\"cat\", \"/made\"]\n", "app:1")

	// tag
	if err := st.Images.Tag("app:1", "app:2"); err != nil {
		t.Fatal(err)
	}
	if err := st.Images.Tag("nope", "x"); err == nil {
		t.Error("Tag of a missing image succeeded")
	}
	if got, want := storeNames(t, st), []string{"app:1", "app:2"}; !slices.Equal(got, want) {
		t.Errorf("images = %v, want %v", got, want)
	}

	// FROM a name only the local store has: docker.io is not reachable.
	res2 := storeBuild(t, st, base, "FROM app:1\nRUN cat /made /made > /twice\nCMD [\"cat\", \"/twice\"]\n", "app:derived")
	if res2.Manifest.Digest == res.Manifest.Digest {
		t.Fatal("derived image has the base's digest")
	}

	// push to the registry the name says
	pushed := reg + "/store/app:pushed"
	if err := st.Images.Tag("app:1", pushed); err != nil {
		t.Fatal(err)
	}
	if err := st.Images.Push(t.Context(), pushed, source.Keychain); err != nil {
		t.Fatal(err)
	}
	pimg := pull(t, pushed)
	testutil.CheckImage(t, "pushed", pimg)
	if d, _ := pimg.Digest(); d.String() != res.Manifest.Digest.String() {
		t.Errorf("pushed digest %s, want %s", d, res.Manifest.Digest)
	}

	// save, both formats
	dir := t.TempDir()
	saved := map[string]string{}
	for _, format := range []string{"docker", "oci"} {
		p := filepath.Join(dir, format+".tar")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Images.Save(f, format, "app:1", "app:2", "app:derived"); err != nil {
			t.Fatalf("save --format %s: %v", format, err)
		}
		f.Close()
		saved[format] = p
	}
	if err := st.Images.Save(io.Discard, "docker", "missing:1"); err == nil {
		t.Error("saving a missing image succeeded")
	}
	checkDockerTarImages(t, saved["docker"], map[string]string{"app:1": res.Manifest.Digest.String(), "app:2": res.Manifest.Digest.String()})
	checkOCITarImages(t, saved["oci"], map[string]string{"app:1": res.Manifest.Digest.String(), "app:2": res.Manifest.Digest.String(), "app:derived": res2.Manifest.Digest.String()})

	// rmi
	if err := st.Images.Remove("app:2"); err != nil {
		t.Fatal(err)
	}
	if err := st.Images.Remove("app:2"); err == nil {
		t.Error("removing app:2 twice succeeded")
	}
	if got, want := storeNames(t, st), []string{pushed, "app:1", "app:derived"}; !slices.Equal(got, want) {
		t.Errorf("images after rmi = %v, want %v", got, want)
	}
	if got := runImage(t, st, "app:1"); got != "made\n" {
		t.Errorf("run app:1 printed %q", got)
	}

	// load each format into an empty state dir, run, and build FROM it.
	for format, p := range saved {
		t.Run(format, func(t *testing.T) {
			root := t.TempDir()
			st := openState(t, root)
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			loaded, err := st.Images.Load(t.Context(), f)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			var names []string
			for _, l := range loaded {
				names = append(names, l.Name)
			}
			slices.Sort(names)
			if want := []string{"app:1", "app:2", "app:derived"}; !slices.Equal(names, want) {
				t.Errorf("loaded %v, want %v", names, want)
			}
			for _, l := range loaded {
				img, err := exporter.V1Image(st.Content, l.Manifest)
				if err != nil {
					t.Fatal(err)
				}
				testutil.CheckImage(t, format+" "+l.Name, img)
				if format == "oci" {
					want := res.Manifest.Digest
					if l.Name == "app:derived" {
						want = res2.Manifest.Digest
					}
					if l.Manifest.Digest != want {
						t.Errorf("loaded %s: manifest %s, want the saved %s", l.Name, l.Manifest.Digest, want)
					}
				}
			}
			storeBuild(t, st, base, "FROM app:derived\nRUN cat /twice /made > /thrice\nCMD [\"cat\", \"/thrice\"]\n", "app:3")
			if got := runImage(t, st, "app:derived"); got != "made\nmade\n" {
				t.Errorf("run app:derived printed %q", got)
			}
			if got := runImage(t, openState(t, root), "app:3"); got != "made\nmade\nmade\n" {
				t.Errorf("run app:3 printed %q", got)
			}
		})
	}

	// A docker tar written by -o type=docker loads too.
	t.Run("type=docker", func(t *testing.T) {
		st := openState(t, root)
		out := filepath.Join(t.TempDir(), "d.tar")
		o, err := output.Parse("type=docker,dest=" + out + ",name=exported:1")
		if err != nil {
			t.Fatal(err)
		}
		ev := newEvents()
		if _, err := st.Build(t.Context(), build.Options{
			ContextDir: writeContext(t, nil), Dockerfile: []byte("FROM app:1\nRUN echo exported > /made\n"),
			DockerfileName: "Dockerfile", Progress: ev, Outputs: []output.Spec{o},
		}); err != nil {
			t.Fatalf("build: %v\n%s", err, ev.logs.String())
		}
		root2 := t.TempDir()
		st2 := openState(t, root2)
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := st2.Images.Load(t.Context(), f); err != nil {
			t.Fatal(err)
		}
		if got := runImage(t, st2, "exported:1"); got != "exported\n" {
			t.Errorf("run exported:1 printed %q", got)
		}
	})
}

func checkDockerTarImages(t *testing.T, p string, want map[string]string) {
	t.Helper()
	for tagName := range want {
		tag, err := name.NewTag(tagName)
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(p, &tag)
		if err != nil {
			t.Errorf("docker tar: %s: %v", tagName, err)
			continue
		}
		testutil.CheckImage(t, "docker tar "+tagName, img)
	}
}

// checkOCITarImages unpacks an OCI layout tar and checks that each name
// leads to the wanted manifest digest and a valid image.
func checkOCITarImages(t *testing.T, p string, want map[string]string) {
	t.Helper()
	lp := testutil.UntarLayout(t, p)
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range im.Manifests {
		got[d.Annotations["io.containerd.image.name"]] = d.Digest.String()
		img, err := lp.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		testutil.CheckImage(t, "OCI tar "+d.Digest.String(), img)
	}
	for n, d := range want {
		if got[n] != d {
			t.Errorf("OCI tar: %s -> %s, want %s (index: %v)", n, got[n], d, got)
		}
	}
}
