package attest

import (
	"fmt"
	"strings"

	"github.com/containerd/platforms"
	"github.com/google/go-containerregistry/pkg/name"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	packageurl "github.com/package-url/packageurl-go"
)

// imagePURL is the package URL of an image reference with an optional
// platform, as BuildKit's purl.RefToPURL("docker", ...) writes it (the
// tests compare the two). Not BuildKit's function itself: it parses with
// distribution/reference, whose package initialisation compiles regular
// expressions costing every builder command milliseconds of start-up.
func imagePURL(ref string, platform *ocispec.Platform) (string, error) {
	// A digest qualifies the name; a tag (also beside a digest) is its
	// version, "latest" when there is neither.
	base, dgst, hasDigest := strings.Cut(ref, "@")
	tag := ""
	if i := strings.LastIndexByte(base, ':'); i > strings.LastIndexByte(base, '/') {
		base, tag = base[:i], base[i+1:]
	}
	if !hasDigest && tag == "" {
		tag = "latest"
	}
	check := base
	if tag != "" {
		check += ":" + tag
	}
	if hasDigest {
		check += "@" + dgst
	}
	r, err := name.ParseReference(check, name.WeakValidation)
	if err != nil {
		return "", fmt.Errorf("failed to parse ref %q: %w", ref, err)
	}
	// The familiar name: Docker Hub's host left out, and "library/" for
	// its official images.
	repo := r.Context()
	full := repo.RegistryStr() + "/" + repo.RepositoryStr()
	if repo.RegistryStr() == name.DefaultRegistry {
		full = repo.RepositoryStr()
		if rest, ok := strings.CutPrefix(full, "library/"); ok && !strings.Contains(rest, "/") {
			full = rest
		}
	}
	ns, short := "", full
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		ns, short = full[:i], full[i+1:]
	}
	var qualifiers []packageurl.Qualifier
	if hasDigest {
		qualifiers = append(qualifiers, packageurl.Qualifier{Key: "digest", Value: dgst})
	}
	if platform != nil {
		qualifiers = append(qualifiers, packageurl.Qualifier{Key: "platform", Value: platforms.Format(platforms.Normalize(*platform))})
	}
	return packageurl.NewPackageURL("docker", ns, short, tag, qualifiers, "").ToString(), nil
}
