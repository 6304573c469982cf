package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/llb"
	units "github.com/docker/go-units"
	"github.com/spf13/pflag"
)

// buildxFlags are `docker buildx build` flags that builder accepted later
// than the rest, and those it rejects with the reason (see README).
type buildxFlags struct {
	pull         bool
	labels       []string
	annotations  []string
	addHosts     []string
	shmSize      string
	ulimits      []string
	quiet        bool
	load         bool
	cgroupParent string
	platforms    []string
	builder      string
	call         string
	attest       []string
	sbom         string
	provenance   string
}

func addBuildxFlags(fl *pflag.FlagSet, f *buildxFlags) {
	fl.BoolVar(&f.pull, "pull", false, "always resolve FROM images from their registry, never from the local store")
	fl.StringArrayVar(&f.labels, "label", nil, "set a label in the image config: KEY=VALUE (repeatable)")
	fl.StringArrayVar(&f.annotations, "annotation", nil, "annotate the manifest: [manifest:|manifest-descriptor:]KEY=VALUE (repeatable; index: and index-descriptor: need a multi-platform image and are refused)")
	fl.StringArrayVar(&f.addHosts, "add-host", nil, "add HOST:IP (or HOST=IP) to the /etc/hosts of RUN steps (repeatable)")
	fl.StringVar(&f.shmSize, "shm-size", "", "size of /dev/shm in RUN steps, e.g. 128m (default 64m)")
	fl.StringArrayVar(&f.ulimits, "ulimit", nil, "resource limit of RUN steps: NAME=SOFT[:HARD], e.g. nofile=1024:2048 (repeatable)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the image digest, on stdout (as --progress=quiet)")
	fl.BoolVar(&f.load, "load", false, "load the image into the local Docker (Engine API at $DOCKER_HOST or /var/run/docker.sock) or Podman (podman load)")
	fl.StringVar(&f.cgroupParent, "cgroup-parent", "", "refused: each RUN step's cgroup is made beneath builder's own cgroup")
	fl.StringArrayVar(&f.platforms, "platform", nil, "target platform; only the host's is built for now")
	fl.StringVar(&f.builder, "builder", "", "refused: builder has no builder instances")
	fl.StringVar(&f.call, "call", "build", "build, or check (as --check); other calls are refused")
	fl.StringArrayVar(&f.attest, "attest", nil, "refused: attestations are not made yet")
	fl.StringVar(&f.sbom, "sbom", "", "false is accepted; an SBOM attestation is not made yet")
	fl.StringVar(&f.provenance, "provenance", "", "false is accepted; a provenance attestation is not made yet")
}

// refused says why a flag given is not supported, naming it.
func (f *buildxFlags) refused() error {
	no := func(flag, why string) error { return fmt.Errorf("%s is not supported: %s", flag, why) }
	switch {
	case f.cgroupParent != "":
		return no("--cgroup-parent", "each RUN step gets its own cgroup beneath builder's own; start builder in the parent you want (e.g. systemd-run --scope --slice=NAME builder build ...)")
	case f.builder != "":
		return no("--builder", "builder has no builder instances: every build runs in the builder process itself")
	case len(f.attest) > 0:
		return no("--attest", "attestations (SBOM, provenance) are not made yet")
	case f.sbom != "" && !isFalse(f.sbom):
		return no("--sbom", "an SBOM attestation is not made yet (only --sbom=false is accepted)")
	case f.provenance != "" && !isFalse(f.provenance):
		return no("--provenance", "a provenance attestation is not made yet (only --provenance=false is accepted)")
	case f.call != "build" && f.call != "check":
		return no("--call="+f.call, "the calls are build and check")
	}
	host := build.HostPlatform()
	for _, p := range f.platforms {
		for _, p := range strings.Split(p, ",") {
			if p != host.OS+"/"+host.Architecture && p != host.OS+"/"+host.Architecture+"/"+host.Variant {
				return no("--platform="+p, "only the host platform "+host.OS+"/"+host.Architecture+" is built (multi-platform builds are not implemented yet)")
			}
		}
	}
	return nil
}

func isFalse(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && !b
}

// apply puts the accepted flags into opt.
func (f *buildxFlags) apply(opt *build.Options) error {
	if err := f.refused(); err != nil {
		return err
	}
	opt.Pull = f.pull
	if len(f.labels) > 0 {
		opt.Labels = map[string]string{}
		for _, l := range f.labels {
			k, v, _ := strings.Cut(l, "=")
			if k == "" {
				return fmt.Errorf("--label %q: want KEY=VALUE", l)
			}
			opt.Labels[k] = v
		}
	}
	var err error
	if opt.Annotations, err = parseAnnotations(f.annotations); err != nil {
		return err
	}
	if opt.ExtraHosts, err = parseAddHosts(f.addHosts); err != nil {
		return err
	}
	if f.shmSize != "" {
		if opt.ShmSize, err = units.RAMInBytes(f.shmSize); err != nil || opt.ShmSize <= 0 {
			return fmt.Errorf("--shm-size %q: want a positive size such as 128m", f.shmSize)
		}
	}
	opt.Ulimits, err = parseUlimits(f.ulimits)
	return err
}

// parseAnnotations reads --annotation values as buildx: KEY=VALUE (the
// manifest) or TYPES:KEY=VALUE, TYPES a comma-separated list of manifest,
// manifest-descriptor, index, index-descriptor, each optionally followed by
// [PLATFORM].
func parseAnnotations(values []string) (build.Annotations, error) {
	var a build.Annotations
	host := build.HostPlatform()
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
			if plat != "" && plat != host.OS+"/"+host.Architecture {
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
