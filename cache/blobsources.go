package cache

import (
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

var bucketBlobSources = []byte("blobsources")

// PutBlobSource records the repository a blob was fetched from, so that a
// push to another repository of the same registry can mount it there
// instead of uploading it.
func (d *DB) PutBlobSource(dgst digest.Digest, repository string) error {
	return d.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketBlobSources)
		if err != nil {
			return err
		}
		return b.Put([]byte(dgst), []byte(repository))
	})
}

// BlobSource returns the repository a blob was fetched from.
func (d *DB) BlobSource(dgst digest.Digest) (string, bool) {
	var repo string
	d.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketBlobSources); b != nil {
			repo = string(b.Get([]byte(dgst)))
		}
		return nil
	})
	return repo, repo != ""
}
