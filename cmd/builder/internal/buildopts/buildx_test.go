package buildopts

import (
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
