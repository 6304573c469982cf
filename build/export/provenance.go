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
