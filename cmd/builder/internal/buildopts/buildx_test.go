package buildopts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/platform"
)

func TestParseProvenance(t *testing.T) {
	for in, want := range map[string]build.Provenance{
		"":                       {},
		"false":                  {},
		"true":                   {Mode: attest.ModeMin},
		"mode=max":               {Mode: attest.ModeMax},
		"mode=min,version=v0.2":  {Mode: attest.ModeMin, Version: attest.SLSA02},
		"version=v1":             {Mode: attest.ModeMin, Version: attest.SLSA1},
		"mode=max,disabled=true": {},
	} {
		got, err := parseProvenance(in)
		if err != nil || got != want {
			t.Errorf("parseProvenance(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"mode=full", "version=v2", "builder-id=x"} {
		if _, err := parseProvenance(in); err == nil {
			t.Errorf("parseProvenance(%q) accepted", in)
		}
	}
}

func TestPlatformFlag(t *testing.T) {
	var opt build.Options
	f := Buildx{Call: "build", Platforms: []string{"linux/amd64,linux/arm64", "arm64"}}
	if err := f.apply(&opt); err != nil {
		t.Fatal(err)
	}
	if len(opt.Platforms) != 2 || platform.Format(opt.Platforms[1]) != "linux/arm64" {
		t.Errorf("platforms %v, want linux/amd64 and linux/arm64 once each", opt.Platforms)
	}
	f.Platforms = []string{"linux/"}
	if err := f.apply(&opt); err == nil {
		t.Error("--platform linux/ accepted")
	}
}

// TestAttestationFlags: --sbom and --attest as buildx reads them; a
// generator image is refused with the reason.
func TestAttestationFlags(t *testing.T) {
	for _, tc := range []struct {
		f          Buildx
		sbom       bool
		provenance string
	}{
		{Buildx{}, false, ""},
		{Buildx{SBOM: "false"}, false, ""},
		{Buildx{SBOM: "true"}, true, ""},
		{Buildx{SBOM: "disabled=false"}, true, ""},
		{Buildx{SBOM: "true", Attest: []string{"type=sbom,disabled=true"}}, false, ""},
		{Buildx{Attest: []string{"type=sbom"}}, true, ""},
		{Buildx{Attest: []string{"type=provenance,mode=max", "type=sbom"}}, true, "mode=max"},
		{Buildx{Provenance: "true", Attest: []string{"type=provenance"}}, false, "true"},
	} {
		sbom, prov, err := tc.f.attestations()
		if err != nil || sbom != tc.sbom || prov != tc.provenance {
			t.Errorf("%+v: sbom %v, provenance %q, %v; want %v, %q", tc.f, sbom, prov, err, tc.sbom, tc.provenance)
		}
	}
	for in, want := range map[string]string{
		"generator=docker/buildkit-syft-scanner": "generator images are not supported",
		"scan-context=true":                      "scan-context and scan-stage are not supported",
	} {
		if _, err := parseSBOM(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--sbom %q: %v, want %q", in, err, want)
		}
	}
	if _, _, err := (&Buildx{Attest: []string{"type=vex"}}).attestations(); err == nil {
		t.Error("--attest type=vex accepted")
	}
}

// TestSBOMNeedsScanner: --sbom=true fails before the build, saying how to
// get builder-sbom, when it is neither next to builder nor on PATH; it
// finds one on PATH.
func TestSBOMNeedsScanner(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var opt build.Options
	err := (&Buildx{Call: "build", SBOM: "true"}).apply(&opt)
	if err == nil || !strings.Contains(err.Error(), "make build-sbom") {
		t.Fatalf("--sbom without builder-sbom: %v, want how to build it", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, attest.ScannerName), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if err := (&Buildx{Call: "build", SBOM: "true"}).apply(&opt); err != nil || opt.SBOMScanner != filepath.Join(dir, attest.ScannerName) {
		t.Errorf("--sbom with builder-sbom on PATH: scanner %q, %v", opt.SBOMScanner, err)
	}
	opt = build.Options{}
	if err := (&Buildx{Call: "build", SBOM: "false"}).apply(&opt); err != nil || opt.SBOMScanner != "" {
		t.Errorf("--sbom=false: scanner %q, %v", opt.SBOMScanner, err)
	}
}
