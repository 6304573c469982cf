package buildopts

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/platform"
	units "github.com/docker/go-units"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/pflag"
)

// Buildx are `docker buildx build` flags that builder accepted later
// than the rest, and those it rejects with the reason (see README).
type Buildx struct {
	Pull         bool
	Labels       []string
	Annotations  []string
	AddHosts     []string
	ShmSize      string
	Ulimits      []string
	Quiet        bool
	Load         bool
	CgroupParent string
	Platforms    []string
	Builder      string
	Call         string
	Attest       []string
	SBOM         string
	Provenance   string
}

func addBuildx(fl *pflag.FlagSet, f *Buildx) {
	fl.BoolVar(&f.Pull, "pull", false, "always resolve FROM images from their registry, never from the local store")
	fl.StringArrayVar(&f.Labels, "label", nil, "set a label in the image config: KEY=VALUE (repeatable)")
	fl.StringArrayVar(&f.Annotations, "annotation", nil, "annotate the manifest: [manifest:|manifest-descriptor:]KEY=VALUE (repeatable; index: and index-descriptor: need a multi-platform image and are refused)")
	fl.StringArrayVar(&f.AddHosts, "add-host", nil, "add HOST:IP (or HOST=IP) to the /etc/hosts of RUN steps (repeatable)")
	fl.StringVar(&f.ShmSize, "shm-size", "", "size of /dev/shm in RUN steps, e.g. 128m (default 64m)")
	fl.StringArrayVar(&f.Ulimits, "ulimit", nil, "resource limit of RUN steps: NAME=SOFT[:HARD], e.g. nofile=1024:2048 (repeatable)")
	fl.BoolVarP(&f.Quiet, "quiet", "q", false, "print only the image digest, on stdout (as --progress=quiet)")
	fl.BoolVar(&f.Load, "load", false, "load the image into the local Docker (Engine API at $DOCKER_HOST or /var/run/docker.sock) or Podman (podman load)")
	fl.StringVar(&f.CgroupParent, "cgroup-parent", "", "refused: each RUN step's cgroup is made beneath builder's own cgroup")
	fl.StringArrayVar(&f.Platforms, "platform", nil, "target platform, os/arch[/variant] (repeatable, comma-separated); a non-host one runs RUN steps under QEMU")
	fl.StringVar(&f.Builder, "builder", "", "refused: builder has no builder instances")
	fl.StringVar(&f.Call, "call", "build", "build, or check (as --check); other calls are refused")
	fl.StringArrayVar(&f.Attest, "attest", nil, "attestation: type=sbom (as --sbom) or type=provenance[,mode=min|max][,version=v0.2|v1] (as --provenance) (repeatable)")
	fl.StringVar(&f.SBOM, "sbom", "", "attach an SPDX SBOM of each platform's file tree: true or false (needs builder-sbom next to builder or on PATH: make build-sbom)")
	fl.StringVar(&f.Provenance, "provenance", "", "SLSA provenance attached to the image index (even of one platform, as BuildKit): mode=min|max[,version=v0.2|v1], true (min) or false")
}

// refused says why a flag given is not supported, naming it.
func (f *Buildx) refused() error {
	no := func(flag, why string) error { return fmt.Errorf("%s is not supported: %s", flag, why) }
	switch {
	case f.CgroupParent != "":
		return no("--cgroup-parent", "each RUN step gets its own cgroup beneath builder's own; start builder in the parent you want (e.g. systemd-run --scope --slice=NAME builder build ...)")
	case f.Builder != "":
		return no("--builder", "builder has no builder instances: every build runs in the builder process itself")
	case f.Call != "build" && f.Call != "check":
		return no("--call="+f.Call, "the calls are build and check")
	}
	return nil
}

// parseProvenance reads --provenance as buildx: a boolean, or
// mode=min|max and version=v0.2|v1.
func parseProvenance(v string) (build.Provenance, error) {
	var p build.Provenance
	if v == "" || isFalse(v) {
		return p, nil
	}
	if b, err := strconv.ParseBool(v); err == nil && b {
		return build.Provenance{Mode: attest.ModeMin}, nil
	}
	p.Mode = attest.ModeMin
	for kv := range strings.SplitSeq(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		switch {
		case k == "mode" && (val == "min" || val == "max"):
			p.Mode = attest.Mode(val)
		case k == "version" && (val == "v0.2" || val == "v1"):
			p.Version = attest.Version(val)
		case k == "disabled" && val == "true":
			return build.Provenance{}, nil
		default:
			return p, fmt.Errorf("--provenance %q: want mode=min|max, version=v0.2|v1, true or false", v)
		}
	}
	return p, nil
}

// attestations reads --sbom, --provenance and --attest (buildx: --sbom
// and --provenance are shorthands of --attest type=sbom and
// type=provenance; a later --attest of a type wins).
func (f *Buildx) attestations() (sbom bool, provenance string, err error) {
	if sbom, err = parseSBOM(f.SBOM); err != nil {
		return false, "", err
	}
	provenance = f.Provenance
	for _, a := range f.Attest {
		typ, rest, _ := strings.Cut(a, ",")
		switch typ {
		case "type=sbom":
			if sbom, err = parseSBOM(cmp.Or(rest, "true")); err != nil {
				return false, "", fmt.Errorf("--attest %q: %w", a, err)
			}
		case "type=provenance":
			provenance = cmp.Or(rest, "true")
		default:
			return false, "", fmt.Errorf("--attest %q: want type=sbom or type=provenance first", a)
		}
	}
	return sbom, provenance, nil
}

// parseSBOM reads --sbom as buildx: a boolean, or disabled=true|false;
// generator= and scan options are refused.
func parseSBOM(v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return b, nil
	}
	want := true
	for kv := range strings.SplitSeq(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		b, err := strconv.ParseBool(val)
		switch {
		case k == "disabled" && err == nil:
			want = !b
		case k == "generator":
			return false, fmt.Errorf("--sbom %q: generator images are not supported: builder scans each platform's file tree with builder-sbom (anchore/syft's catalogers) instead of running a scanner image", v)
		default:
			return false, fmt.Errorf("--sbom %q: want true, false or disabled=true|false (scan-context and scan-stage are not supported: the final file tree is scanned)", v)
		}
	}
	return want, nil
}

func isFalse(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && !b
}

// apply puts the accepted flags into opt.
func (f *Buildx) apply(opt *build.Options) error {
	if err := f.refused(); err != nil {
		return err
	}
	opt.Pull = f.Pull
	sbom, provenance, err := f.attestations()
	if err != nil {
		return err
	}
	if opt.Provenance, err = parseProvenance(provenance); err != nil {
		return err
	}
	if sbom {
		// Looked for before the build, so that a missing scanner fails
		// it at once; without --sbom nothing looks for it.
		if opt.SBOMScanner, err = attest.FindScanner(); err != nil {
			return err
		}
	}
	if opt.Platforms, err = platform.ParseList(f.Platforms); err != nil {
		return fmt.Errorf("--platform: %w", err)
	}
	if len(f.Labels) > 0 {
		opt.Labels = map[string]string{}
		for _, l := range f.Labels {
			k, v, _ := strings.Cut(l, "=")
			if k == "" {
				return fmt.Errorf("--label %q: want KEY=VALUE", l)
			}
			opt.Labels[k] = v
		}
	}
	if opt.Annotations, err = parseAnnotations(f.Annotations, opt.Platforms); err != nil {
		return err
	}
	if opt.ExtraHosts, err = parseAddHosts(f.AddHosts); err != nil {
		return err
	}
	if f.ShmSize != "" {
		if opt.ShmSize, err = units.RAMInBytes(f.ShmSize); err != nil || opt.ShmSize <= 0 {
			return fmt.Errorf("--shm-size %q: want a positive size such as 128m", f.ShmSize)
		}
	}
	opt.Ulimits, err = parseUlimits(f.Ulimits)
	return err
}

// parseAnnotations reads --annotation values as buildx: KEY=VALUE (the
// manifest) or TYPES:KEY=VALUE, TYPES a comma-separated list of manifest,
// manifest-descriptor, index, index-descriptor, each optionally followed by
// [PLATFORM].
func parseAnnotations(values []string, targets []ocispec.Platform) (build.Annotations, error) {
	var a build.Annotations
	if len(targets) == 0 {
		targets = []ocispec.Platform{platform.Host()}
	}
	for _, v := range values {
		lhs, value, ok := strings.Cut(v, "=")
		if !ok {
			return a, fmt.Errorf("--annotation %q: want [TYPE:]KEY=VALUE", v)
		}
		types, key := "manifest", lhs
		if t, k, ok := strings.Cut(lhs, ":"); ok {
			types, key = t, k
		}
		for _, t := range strings.Split(types, ",") {
			t, plat, _ := strings.Cut(strings.TrimSuffix(t, "]"), "[")
			if plat != "" && !builds(targets, plat) {
				continue // for a platform this build does not make
			}
			switch t {
			case "manifest":
				a.Manifest = setKey(a.Manifest, key, value)
			case "manifest-descriptor":
				a.ManifestDescriptor = setKey(a.ManifestDescriptor, key, value)
			case "index", "index-descriptor":
				return a, fmt.Errorf("--annotation %q: %s annotations need an image index, and a single-platform build makes a manifest without one (BuildKit refuses them too)", v, t)
			default:
				return a, fmt.Errorf("--annotation %q: unknown type %q (manifest, manifest-descriptor, index, index-descriptor)", v, t)
			}
		}
	}
	return a, nil
}

// builds reports whether the platform named p is one of targets.
func builds(targets []ocispec.Platform, p string) bool {
	want, err := platform.Parse(p)
	return err == nil && slices.ContainsFunc(targets, func(t ocispec.Platform) bool { return platform.Format(t) == platform.Format(want) })
}

func setKey(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// parseAddHosts reads --add-host HOST:IP or HOST=IP values.
func parseAddHosts(values []string) ([]llb.HostIP, error) {
	var out []llb.HostIP
	for _, v := range values {
		host, ip, ok := strings.Cut(v, "=")
		if !ok {
			host, ip, ok = strings.Cut(v, ":")
		}
		if !ok || host == "" {
			return nil, fmt.Errorf("--add-host %q: want HOST:IP or HOST=IP", v)
		}
		// The name becomes a line of /etc/hosts: no room for another line
		// or a second field.
		if strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == '#' || r == 0x7f }) {
			return nil, fmt.Errorf("--add-host %q: the host name has a space, control character or #", v)
		}
		if ip == "host-gateway" {
			return nil, fmt.Errorf("--add-host %q: host-gateway is not supported: RUN steps have no gateway to the host by default (use --network=host with --allow network.host)", v)
		}
		addr, err := netip.ParseAddr(strings.Trim(ip, "[]"))
		if err != nil {
			return nil, fmt.Errorf("--add-host %q: %q is not an IP address", v, ip)
		}
		out = append(out, llb.HostIP{Host: host, IP: addr.String()})
	}
	return out, nil
}

// parseUlimits reads --ulimit NAME=SOFT[:HARD] values (docker's syntax and
// names; -1 is unlimited).
func parseUlimits(values []string) ([]llb.Ulimit, error) {
	var out []llb.Ulimit
	for _, v := range values {
		u, err := units.ParseUlimit(v)
		if err != nil {
			return nil, fmt.Errorf("--ulimit %q: %w", v, err)
		}
		if _, err := u.GetRlimit(); err != nil {
			return nil, fmt.Errorf("--ulimit %q: %w", v, err)
		}
		out = append(out, llb.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	return out, nil
}
