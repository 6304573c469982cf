// Package pushed keeps, per repository, the blobs that pushes from a state
// directory found in (or sent to) it: a hint for exporter/push, in plain
// files beside the metadata database rather than in it (written without a
// sync, never trusted as fact).
package pushed

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
)

// maxPushed bounds the blobs remembered per repository.
const maxPushed = 4096

// Read returns the blobs that pushes recorded in dir found in (or sent to)
// repository. It is a hint: a push asks the registry about these rather
// than uploading them, so a registry that lost one still gets it. A
// missing or damaged record is an empty one.
func Read(dir, repository string) map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	for _, dg := range read(dir, repository) {
		out[dg] = true
	}
	return out
}

func path(dir, repository string) string {
	sum := sha256.Sum256([]byte(repository))
	return filepath.Join(dir, hex.EncodeToString(sum[:16]))
}

func read(dir, repository string) []digest.Digest {
	f, err := os.Open(path(dir, repository))
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() || sc.Text() != repository {
		return nil // another repository's (a hash collision) or torn
	}
	var out []digest.Digest
	for sc.Scan() {
		if dg := digest.Digest(sc.Text()); dg.Validate() == nil {
			out = append(out, dg)
		}
	}
	return out
}

// Remember adds blobs to what Read returns for repository. The
// record is written without a sync, as the hint it is: a crash may lose it
// (the next push asks about, or uploads, small blobs again), never make a
// push wrong. Concurrent pushes may each lose the other's additions, too.
func Remember(dir, repository string, blobs []digest.Digest) error {
	old := read(dir, repository)
	seen := map[digest.Digest]bool{}
	var b strings.Builder
	b.WriteString(repository + "\n")
	n := 0
	for _, list := range [][]digest.Digest{blobs, old} {
		for _, dg := range list {
			if !seen[dg] && n < maxPushed {
				seen[dg] = true
				b.WriteString(dg.String() + "\n")
				n++
			}
		}
	}
	p := path(dir, repository)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("remembering pushed blobs: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("remembering pushed blobs: %w", err)
	}
	_, err = tmp.WriteString(b.String())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("remembering pushed blobs: %w", err)
	}
	return nil
}
