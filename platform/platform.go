// Package platform parses, formats and matches the platforms images are
// built for ("linux/arm64", "arm/v7"), with containerd's semantics (the
// github.com/containerd/platforms module, which BuildKit uses too): names are
// normalised ("aarch64" is arm64, "arm64/v8" is arm64, "arm" is arm/v7), and
// picking a manifest from an index prefers the exact platform, then
// compatible ones (arm/v6 for arm/v7, 386 for amd64), as BuildKit does when
// it resolves a base image.
//
// It also knows which QEMU user emulator runs which architecture, and
// whether binfmt_misc has it registered (emulator_linux.go).
package platform

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Parse parses one platform: "os/arch[/variant]" or "arch[/variant]". Images
// built here are Linux images, so a missing OS means linux (containerd would
// take the host's OS). The result is normalised.
func Parse(s string) (ocispec.Platform, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return ocispec.Platform{}, fmt.Errorf("empty platform")
	}
	if s == "local" {
		return Host(), nil
	}
	spec := s
	if first, _, _ := strings.Cut(s, "/"); !isOS(first) {
		// "arm64/v8": containerd would read arm64 as the OS.
		spec = "linux/" + s
	}
	p, err := platforms.Parse(spec)
	if err != nil {
		return ocispec.Platform{}, fmt.Errorf("platform %q: %w", s, err)
	}
	return platforms.Normalize(p), nil
}

// isOS reports whether containerd reads name alone as an operating system
// rather than an architecture (for which it fills in the host's OS).
func isOS(name string) bool {
	p, err := platforms.Parse(name)
	return err == nil && strings.EqualFold(p.OS, name)
}

// ParseList parses the values of a repeatable, comma-separated flag such
// as --platform, dropping repeats and keeping the order given.
func ParseList(values []string) ([]ocispec.Platform, error) {
	var out []ocispec.Platform
	seen := map[string]bool{}
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(f) == "" {
				continue
			}
			p, err := Parse(f)
			if err != nil {
				return nil, err
			}
			if k := Format(p); !seen[k] {
				seen[k] = true
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// Format returns "os/arch[/variant]" of the normalised p.
func Format(p ocispec.Platform) string {
	return platforms.Format(platforms.Normalize(p))
}

// Host is the platform this process runs on, with the arm variant read
// from the CPU (as BuildKit's BUILDPLATFORM has it).
func Host() ocispec.Platform {
	p := platforms.Normalize(platforms.DefaultSpec())
	p.OS = "linux"
	return p
}

// Dir is the subdirectory name local and tar outputs give a platform when
// several are built: "linux_arm64", "linux_arm_v7", as BuildKit names them.
func Dir(p ocispec.Platform) string {
	return strings.ReplaceAll(Format(p), "/", "_")
}

// Select returns the manifest of an index to use for platform want: the
// one of the exact platform, or else the best compatible one in
// containerd's order. Descriptors without a platform, and attestation
// manifests (platform unknown/unknown), are never chosen.
func Select(manifests []ocispec.Descriptor, want ocispec.Platform) (ocispec.Descriptor, error) {
	m := platforms.Only(platforms.Normalize(want))
	best := -1
	for i, d := range manifests {
		if d.Platform == nil || isAttestation(d) || !m.Match(platforms.Normalize(*d.Platform)) {
			continue
		}
		if best < 0 || m.Less(platforms.Normalize(*d.Platform), platforms.Normalize(*manifests[best].Platform)) {
			best = i
		}
	}
	if best < 0 {
		return ocispec.Descriptor{}, &NoMatchError{Want: want, Have: Available(manifests)}
	}
	return manifests[best], nil
}

// Available lists the image platforms of an index's manifests, formatted,
// in index order, without repeats or attestation manifests.
func Available(manifests []ocispec.Descriptor) []string {
	var have []string
	for _, d := range manifests {
		if d.Platform == nil || isAttestation(d) {
			continue
		}
		if f := Format(*d.Platform); !slices.Contains(have, f) {
			have = append(have, f)
		}
	}
	return have
}

// AttestationReferenceType is the annotation value BuildKit gives the
// attestation manifests it adds to an index.
const AttestationReferenceType = "attestation-manifest"

func isAttestation(d ocispec.Descriptor) bool {
	return d.Annotations["vnd.docker.reference.type"] == AttestationReferenceType
}

// NoMatchError says an index has no manifest for a platform, and which
// platforms it has.
type NoMatchError struct {
	Want ocispec.Platform
	Have []string
}

func (e *NoMatchError) Error() string {
	if len(e.Have) == 0 {
		return fmt.Sprintf("no manifest for platform %s: the index lists no platforms", Format(e.Want))
	}
	return fmt.Sprintf("no manifest for platform %s (the image has: %s)", Format(e.Want), strings.Join(e.Have, ", "))
}

// Native reports whether p runs on this host without emulation: the host's
// own platform and the ones its CPU runs directly (386 on amd64 kernels,
// which Debian builds with IA32 emulation).
func Native(p ocispec.Platform) bool {
	host := Host()
	p = platforms.Normalize(p)
	if p.OS != host.OS {
		return false
	}
	if p.Architecture == host.Architecture {
		return true
	}
	return runtime.GOARCH == "amd64" && p.Architecture == "386"
}
