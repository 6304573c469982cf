package attest

import (
	"testing"

	"github.com/moby/buildkit/util/purl"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestImagePURLAsBuildKit: imagePURL writes what BuildKit's RefToPURL
// writes, and refuses what it refuses.
func TestImagePURLAsBuildKit(t *testing.T) {
	const d = "sha256:e72f985af9637200c471a4ba1332437e822bf66853d9c42d3b2d2027d419da3d"
	refs := []string{
		"busybox", "busybox:1.36", "docker.io/library/busybox:latest", "library/busybox", "index.docker.io/library/busybox",
		"foo/bar", "foo/bar:baz", "docker.io/foo/bar", "library/a/b", "127.0.0.1:5077/busybox:multi",
		"localhost:5000/a/b/c:tag", "ghcr.io/org/img@" + d, "busybox@" + d, "docker.io/library/busybox@" + d, "foo/bar@" + d, "img:tag@" + d, "registry.example.com/x/y:1.0@" + d,
		"bad::tag", "img@sha256:short", "",
		// Not compared: "Upper/case", an upper-case host to
		// distribution/reference, a name go-containerregistry refuses
		// (and so builder never pulls: no provenance names it).
	}
	plats := []*ocispec.Platform{nil, {OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm", Variant: "v7"}, {OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "aarch64"}}
	for _, ref := range refs {
		for _, p := range plats {
			want, werr := purl.RefToPURL("docker", ref, p)
			got, gerr := imagePURL(ref, p)
			if got != want || (gerr != nil) != (werr != nil) {
				t.Errorf("imagePURL(%q, %v) = %q, %v; BuildKit gives %q, %v", ref, p, got, gerr, want, werr)
			}
		}
	}
}
