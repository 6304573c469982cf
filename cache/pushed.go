package cache

import (
	"path/filepath"

	"github.com/builder-dev/builder/cache/pushed"
	"github.com/opencontainers/go-digest"
)

// Pushed and RememberPushed keep cache/pushed's hint of the blobs a
// repository has, under the state directory (exporter/push.Record).
func (d *DB) Pushed(repository string) map[digest.Digest]bool {
	return pushed.Read(filepath.Join(d.root, "pushed"), repository)
}

// RememberPushed: see Pushed.
func (d *DB) RememberPushed(repository string, blobs []digest.Digest) error {
	return pushed.Remember(filepath.Join(d.root, "pushed"), repository, blobs)
}
