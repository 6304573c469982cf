package attest

import (
	"encoding/json"
	"fmt"
)

// FileName is the name under which BuildKit writes a statement of
// predicateType next to a local or tar output's files: sbom.spdx.json,
// provenance.json.
func FileName(predicateType string) (string, error) {
	switch predicateType {
	case PredicateSPDX:
		return "sbom.spdx.json", nil
	case PredicateSLSA02, PredicateSLSA1:
		return "provenance.json", nil
	}
	return "", fmt.Errorf("no file name for statements of predicate type %q", predicateType)
}

// FileBytes is st as BuildKit writes it to a local or tar output: about
// subjects (the output's regular files), indented by two spaces, without a
// final newline.
func FileBytes(st Statement, subjects []Subject) ([]byte, error) {
	st.Subject = subjects
	if st.Subject == nil {
		st.Subject = []Subject{}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding %s statement: %w", st.PredicateType, err)
	}
	return b, nil
}
