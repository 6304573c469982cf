package export

import (
	"fmt"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/platform"
)

// provenances are the statements of each platform's build, made once so
// that every output's index gets the same ones; nil without --provenance.
func provenances(opt Options, images []Image) ([]attest.Statement, error) {
	if opt.Provenance.Mode == "" {
		return nil, nil
	}
	req := opt.ProvenanceRequest
	var out []attest.Statement
	for _, pi := range images {
		st, err := opt.Provenance.Statement(req, pi.Platform, pi.Root)
		if err != nil {
			return nil, fmt.Errorf("provenance of %s: %w", platform.Format(pi.Platform), err)
		}
		out = append(out, st)
	}
	return out, nil
}

// attestations are each image's statements: its SBOM (from scans, nil
// without --sbom) and then its provenance, the order of BuildKit's
// attestation manifests; nil when there are none.
func attestations(opt Options, images []Image, scans *sbomScans) ([][]attest.Statement, error) {
	provs, err := provenances(opt, images)
	if err != nil {
		return nil, err
	}
	sboms, err := scans.wait()
	if err != nil {
		return nil, err
	}
	if provs == nil && sboms == nil {
		return nil, nil
	}
	out := make([][]attest.Statement, len(images))
	for i := range images {
		if sboms != nil {
			out[i] = append(out[i], sboms[i])
		}
		if provs != nil {
			out[i] = append(out[i], provs[i])
		}
	}
	return out, nil
}
