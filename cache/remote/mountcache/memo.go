package mountcache

import (
	"context"
	"encoding/json"
	"os"
	"strconv"

	"github.com/opencontainers/go-digest"
)

// The memo is what the last export of a cache made of each part, beside
// the cache (<key>/0.parts.json for <key>/0), so that an export where
// few files changed tars and compresses only their parts. A part is
// reused when its fingerprint is the same and its blob still exists.
type memoEntry struct {
	Fingerprint digest.Digest `json:"fingerprint"`
	Part        Part          `json:"part"`
}

func memoPath(dir string) string { return dir + ".parts.json" }

func (p Part) memoKey() string { return p.Path + "\x00" + strconv.FormatBool(p.Tree) }

// loadMemo reads the memo of the cache in dir; a missing or unreadable
// one is empty: every part is then made again.
func loadMemo(dir string) map[string]memoEntry {
	raw, err := os.ReadFile(memoPath(dir))
	if err != nil {
		return nil
	}
	var m map[string]memoEntry
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// saveMemo replaces the memo of the cache in dir, written aside and
// renamed into place.
func saveMemo(dir string, m map[string]memoEntry) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := memoPath(dir) + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, memoPath(dir))
}

// fingerprint digests what part p of the cache in dir holds as the
// kernel describes it: names, types, modes, owners, sizes, inode numbers,
// modification and change times to the nanosecond. Any write to a file
// changes its change time, which no one can set back, so an unchanged
// fingerprint means unchanged files (on this machine).
func fingerprint(ctx context.Context, dir string, p Part) (digest.Digest, error) {
	d := digest.SHA256.Digester()
	h := d.Hash()
	err := walkPart(ctx, dir, p.Path, p.Tree, func(abs, name string) error {
		return statInto(h, abs, name)
	})
	return d.Digest(), err
}
