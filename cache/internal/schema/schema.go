// Package schema names the buckets of the metadata database and the
// running usage total, shared by package cache and its subpackages (such
// as cache/usage) that work in its transactions.
package schema

import (
	"encoding/json"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

var (
	Snapshots = []byte("snapshots")
	Keys      = []byte("keys")
	Layers    = []byte("layers")
	Images    = []byte("images")
	// Meta holds state-wide values: MetaUsage is the running total of the
	// bytes counted in snapshot records (cache.Snapshot.Counted).
	Meta      = []byte("meta")
	MetaUsage = []byte("usage")
)

// Put stores v, JSON-encoded, under key in bucket.
func Put(tx *bolt.Tx, bucket []byte, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(key), b)
}

// Usage returns the running usage total.
func Usage(tx *bolt.Tx) int64 {
	n, _ := strconv.ParseInt(string(tx.Bucket(Meta).Get(MetaUsage)), 10, 64)
	return n
}

// SetUsage sets the running usage total (never below zero).
func SetUsage(tx *bolt.Tx, n int64) error {
	if n < 0 {
		n = 0
	}
	return tx.Bucket(Meta).Put(MetaUsage, []byte(strconv.FormatInt(n, 10)))
}

// AddUsage adds delta to the running usage total.
func AddUsage(tx *bolt.Tx, delta int64) error {
	if delta == 0 {
		return nil
	}
	return SetUsage(tx, Usage(tx)+delta)
}
