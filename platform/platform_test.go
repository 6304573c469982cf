package platform

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"linux/amd64", "linux/amd64"},
		{"linux/arm64", "linux/arm64"},
		{"linux/arm64/v8", "linux/arm64"},
		{"arm64/v8", "linux/arm64"},
		{"aarch64", "linux/arm64"},
		{"arm", "linux/arm/v7"},
		{"arm/v7", "linux/arm/v7"},
		{"linux/arm/v6", "linux/arm/v6"},
		{"linux/armhf", "linux/arm/v7"},
		{"x86_64", "linux/amd64"},
		{"amd64", "linux/amd64"},
		{"linux/amd64/v3", "linux/amd64/v3"},
		{"  linux/riscv64 ", "linux/riscv64"},
	} {
		p, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := Format(p); got != tc.want {
			t.Errorf("Parse(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "linux/", "linux/arm64/v8/x", "not a platform!"} {
		if p, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %s, want an error", bad, Format(p))
		}
	}
	if p, err := Parse("local"); err != nil || Format(p) != Format(Host()) {
		t.Errorf("Parse(local) = %v, %v; want the host %s", p, err, Format(Host()))
	}
}

func TestParseList(t *testing.T) {
	got, err := ParseList([]string{"linux/amd64,linux/arm64", "arm64/v8", " linux/arm/v7 ,"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, Format(p))
	}
	if want := "linux/amd64 linux/arm64 linux/arm/v7"; strings.Join(names, " ") != want {
		t.Errorf("ParseList = %v, want %s", names, want)
	}
	if _, err := ParseList([]string{"linux/amd64,bogus/"}); err == nil {
		t.Error("ParseList with a bad entry: no error")
	}
}

func TestDir(t *testing.T) {
	for in, want := range map[string]string{"linux/arm64": "linux_arm64", "linux/arm/v7": "linux_arm_v7"} {
		p, _ := Parse(in)
		if got := Dir(p); got != want {
			t.Errorf("Dir(%s) = %s, want %s", in, got, want)
		}
	}
}

func desc(n int, p *ocispec.Platform, ann map[string]string) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType:   ocispec.MediaTypeImageManifest,
		Digest:      digest.FromString(string(rune('a' + n))),
		Platform:    p,
		Annotations: ann,
	}
}

func TestSelect(t *testing.T) {
	amd := desc(0, &ocispec.Platform{OS: "linux", Architecture: "amd64"}, nil)
	arm64 := desc(1, &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, nil)
	armv6 := desc(2, &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, nil)
	armv7 := desc(3, &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, nil)
	att := desc(4, &ocispec.Platform{OS: "unknown", Architecture: "unknown"},
		map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amd.Digest.String()})
	noPlatform := desc(5, nil, nil)
	index := []ocispec.Descriptor{att, noPlatform, amd, armv6, arm64, armv7}

	for _, tc := range []struct {
		want string
		from []ocispec.Descriptor
		got  ocispec.Descriptor
	}{
		{"linux/amd64", index, amd},
		{"linux/arm64", index, arm64},
		{"linux/arm64/v8", index, arm64},
		{"linux/arm/v7", index, armv7}, // exact beats the compatible v6 listed first
		{"linux/arm/v6", index, armv6},
		{"linux/arm/v7", []ocispec.Descriptor{amd, armv6}, armv6}, // v7 runs v6
	} {
		p, _ := Parse(tc.want)
		got, err := Select(tc.from, p)
		if err != nil {
			t.Errorf("Select(%s): %v", tc.want, err)
			continue
		}
		if got.Digest != tc.got.Digest {
			t.Errorf("Select(%s) = %s, want %s", tc.want, Format(*got.Platform), Format(*tc.got.Platform))
		}
	}

	p, _ := Parse("linux/s390x")
	_, err := Select(index, p)
	var nm *NoMatchError
	if !errors.As(err, &nm) {
		t.Fatalf("Select(linux/s390x) = %v, want a *NoMatchError", err)
	}
	want := "no manifest for platform linux/s390x (the image has: linux/amd64, linux/arm/v6, linux/arm64, linux/arm/v7)"
	if err.Error() != want {
		t.Errorf("Select(linux/s390x) error = %q, want %q", err, want)
	}
	p, _ = Parse("linux/arm/v6")
	if _, err := Select([]ocispec.Descriptor{armv7}, p); err == nil {
		t.Error("Select(linux/arm/v6) from an arm/v7-only index: no error (v6 cannot run v7)")
	}
}

func TestNative(t *testing.T) {
	if !Native(Host()) {
		t.Errorf("Native(%s) = false", Format(Host()))
	}
	other := "linux/arm64"
	if runtime.GOARCH == "arm64" {
		other = "linux/amd64"
	}
	p, _ := Parse(other)
	if Native(p) {
		t.Errorf("Native(%s) = true on %s", other, runtime.GOARCH)
	}
}

// fakeBinfmt makes a binfmt_misc-like directory with the given entries.
func fakeBinfmt(t *testing.T, entries map[string]string) string {
	dir := t.TempDir()
	entries["register"] = ""
	for name, body := range entries {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadEmulator(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("binfmt_misc is Linux's")
	}
	dir := fakeBinfmt(t, map[string]string{
		"qemu-aarch64": "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n",
		"qemu-arm":     "disabled\ninterpreter /usr/bin/qemu-arm-static\nflags: P\n",
		"python3.11":   "enabled\n",
	})
	e, err := ReadEmulator(dir, "qemu-aarch64")
	if err != nil || !e.Registered || !e.Enabled || !e.Fixed() || e.Interpreter != "/usr/libexec/qemu-binfmt/aarch64-binfmt-P" {
		t.Errorf("ReadEmulator(qemu-aarch64) = %+v, %v", e, err)
	}
	e, err = ReadEmulator(dir, "qemu-arm")
	if err != nil || !e.Registered || e.Enabled || e.Fixed() {
		t.Errorf("ReadEmulator(qemu-arm) = %+v, %v", e, err)
	}
	if e, err := ReadEmulator(dir, "qemu-s390x"); err != nil || e.Registered {
		t.Errorf("ReadEmulator(qemu-s390x) = %+v, %v; want not registered", e, err)
	}
	if _, err := ReadEmulator(t.TempDir(), "qemu-aarch64"); err == nil || !strings.Contains(err.Error(), "not mounted") {
		t.Errorf("ReadEmulator without binfmt_misc = %v, want 'not mounted'", err)
	}
}

func TestCheckRunnableError(t *testing.T) {
	p, _ := Parse("linux/s390x")
	if runtime.GOARCH == "s390x" {
		t.Skip("s390x is the host")
	}
	err := CheckRunnable(p)
	if _, e := ReadEmulator(BinfmtDir, "qemu-s390x"); e == nil && err == nil {
		t.Skip("qemu-s390x is registered here")
	}
	var ne *ErrNoEmulator
	if !errors.As(err, &ne) {
		t.Fatalf("CheckRunnable(linux/s390x) = %v, want an *ErrNoEmulator", err)
	}
	for _, want := range []string{"linux/s390x", "qemu-user-static", "update-binfmts --enable qemu-s390x"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckRunnable(linux/s390x) = %q, want it to mention %q", err, want)
		}
	}
	if err := CheckRunnable(Host()); err != nil {
		t.Errorf("CheckRunnable(host) = %v", err)
	}
}

// TestCheckRunnableArm64 checks the registration .ci/run makes.
func TestCheckRunnableArm64(t *testing.T) {
	if runtime.GOARCH != "amd64" || os.Getenv("CI") == "" {
		t.Skip("checks CI's amd64 host, where .ci/run registers qemu-aarch64")
	}
	p, _ := Parse("linux/arm64")
	if err := CheckRunnable(p); err != nil {
		t.Fatal(err)
	}
}
