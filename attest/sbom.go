package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ScannerName is the SBOM scanner binary builder runs for --sbom
// (cmd/builder-sbom, its own module: syft stays out of builder's binary).
const ScannerName = "builder-sbom"

// FindScanner returns the scanner next to the running builder binary, or
// else on PATH.
func FindScanner() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), ScannerName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(ScannerName)
	if err != nil {
		return "", fmt.Errorf("--sbom needs %s next to builder or on PATH (make build-sbom builds it; it is separate so that a build without --sbom never loads it)", ScannerName)
	}
	return p, nil
}

// SPDX is the part of an SPDX 2.3 JSON document that builder reads back.
type SPDX struct {
	SPDXVersion string        `json:"spdxVersion"`
	Name        string        `json:"name"`
	Packages    []SPDXPackage `json:"packages"`
}

// SPDXPackage is one package of an SPDX document.
type SPDXPackage struct {
	Name         string `json:"name"`
	VersionInfo  string `json:"versionInfo"`
	ExternalRefs []struct {
		Category string `json:"referenceCategory"`
		Type     string `json:"referenceType"`
		Locator  string `json:"referenceLocator"`
	} `json:"externalRefs"`
}

// PURL returns the package's purl ("pkg:deb/debian/curl@7.88.1-10"), or "".
func (p SPDXPackage) PURL() string {
	for _, r := range p.ExternalRefs {
		if r.Type == "purl" {
			return r.Locator
		}
	}
	return ""
}

// SBOM scans the root filesystem at dir with scanner (FindScanner) and
// returns the SPDX document as an in-toto statement, as BuildKit attaches
// its SBOMs. name names the image in the document.
func SBOM(ctx context.Context, scanner, dir, name string) (Statement, error) {
	cmd := exec.CommandContext(ctx, scanner, "-name", name, dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return Statement{}, fmt.Errorf("SBOM of %s: %s", dir, msg)
		}
		return Statement{}, fmt.Errorf("SBOM of %s: running %s: %w %s", dir, scanner, err, msg)
	}
	var doc SPDX
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		return Statement{}, fmt.Errorf("SBOM of %s: %s wrote no SPDX JSON: %w", dir, scanner, err)
	}
	if !strings.HasPrefix(doc.SPDXVersion, "SPDX-2.") {
		return Statement{}, fmt.Errorf("SBOM of %s: %s wrote %q, want an SPDX 2 document", dir, scanner, doc.SPDXVersion)
	}
	return Statement{
		Type:          statementType,
		PredicateType: PredicateSPDX,
		Subject:       []Subject{},
		Predicate:     json.RawMessage(stdout.Bytes()),
	}, nil
}
