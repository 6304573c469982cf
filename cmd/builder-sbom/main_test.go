package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dpkgStatus is a synthetic /var/lib/dpkg/status in Debian's format.
const dpkgStatus = `Package: curl
Status: install ok installed
Priority: optional
Section: web
Installed-Size: 500
Maintainer: Alessandro Ghedini <ghedo@debian.org>
Architecture: amd64
Version: 7.88.1-10+deb12u5
Depends: libc6 (>= 2.34)
Description: command line tool for transferring data with URL syntax

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12000
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries

`

// apkInstalled is a synthetic /lib/apk/db/installed in Alpine's format.
const apkInstalled = `C:Q1abcdefghijklmnopqrstuvwxyz012=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1681228881
c:1234567890abcdef

`

func writeFile(t *testing.T, root, rel string, data []byte, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

type spdxDoc struct {
	SPDXVersion string `json:"spdxVersion"`
	Packages    []struct {
		Name         string `json:"name"`
		VersionInfo  string `json:"versionInfo"`
		ExternalRefs []struct {
			Type    string `json:"referenceType"`
			Locator string `json:"referenceLocator"`
		} `json:"externalRefs"`
	} `json:"packages"`
}

// TestScanRootfs scans a synthetic root filesystem with a dpkg database,
// an apk database and a Go binary, and finds each package with its version.
func TestScanRootfs(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "etc/os-release", []byte("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"), 0o644)
	writeFile(t, root, "var/lib/dpkg/status", []byte(dpkgStatus), 0o644)
	writeFile(t, root, "lib/apk/db/installed", []byte(apkInstalled), 0o644)
	self, err := os.ReadFile(os.Args[0]) // a Go binary with build info
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, "usr/local/bin/gotool", self, 0o755)

	var out bytes.Buffer
	if err := scan(t.Context(), &out, io.Discard, root, "example/app:1"); err != nil {
		t.Fatal(err)
	}
	var doc spdxDoc
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%.2000s", err, out.String())
	}
	if doc.SPDXVersion != "SPDX-2.3" {
		t.Errorf("spdxVersion = %q, want SPDX-2.3", doc.SPDXVersion)
	}
	purls := map[string]bool{}
	versions := map[string]string{}
	for _, p := range doc.Packages {
		versions[p.Name] = p.VersionInfo
		for _, r := range p.ExternalRefs {
			if r.Type == "purl" {
				purls[r.Locator] = true
			}
		}
	}
	for name, want := range map[string]string{"curl": "7.88.1-10+deb12u5", "libc6": "2.36-9+deb12u4", "musl": "1.2.4-r2"} {
		if versions[name] != want {
			t.Errorf("package %s has version %q, want %q (packages: %v)", name, versions[name], want, versions)
		}
	}
	var deb, golang bool
	for p := range purls {
		deb = deb || strings.HasPrefix(p, "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5")
		golang = golang || strings.HasPrefix(p, "pkg:golang/github.com/anchore/syft@")
	}
	if !deb || !golang {
		t.Errorf("purls lack curl's deb purl (%v) or the Go binary's syft module (%v): %v", deb, golang, purls)
	}
}

func TestScanNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	writeFile(t, filepath.Dir(f), "file", nil, 0o644)
	if err := scan(t.Context(), &bytes.Buffer{}, io.Discard, f, ""); err == nil {
		t.Error("scan of a file: no error")
	}
}

// TestScanSymlinkStaysInRoot: an absolute symlink in the image means a
// path in the image, so a scan of the root filesystem must not follow it
// into the host's files (here a dpkg database outside the root).
func TestScanSymlinkStaysInRoot(t *testing.T) {
	host := t.TempDir()
	writeFile(t, host, "status", []byte(strings.ReplaceAll(dpkgStatus, "Package: curl", "Package: hostpkg")), 0o644)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(host, "status"), filepath.Join(root, "var/lib/dpkg/status")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := scan(t.Context(), &out, io.Discard, root, ""); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "hostpkg") {
		t.Errorf("the scan followed an absolute symlink out of the root: %.2000s", out.String())
	}
}

// TestScanGoBinaryInPackageTrees: a Go executable shipped by an npm
// package or a Python wheel is found: those trees are not skipped.
func TestScanGoBinaryInPackageTrees(t *testing.T) {
	self, err := os.ReadFile(os.Args[0]) // a Go binary with build info
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"usr/lib/node_modules/@esbuild/linux-x64/bin/esbuild",
		"usr/lib/python3.11/site-packages/tool/bin/tool",
		"usr/local/lib/python3.12/dist-packages/tool/bin/tool",
	} {
		t.Run(p, func(t *testing.T) {
			root := t.TempDir()
			writeFile(t, root, p, self, 0o755)
			var out bytes.Buffer
			if err := scan(t.Context(), &out, io.Discard, root, "example/app:1"); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "pkg:golang/github.com/anchore/syft@") {
				t.Errorf("the Go binary at /%s is not in the SBOM", p)
			}
		})
	}
}
