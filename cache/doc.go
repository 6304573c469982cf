// Package cache owns the state directory's metadata: snapshot records (the
// layer chain of every result), cache keys and what they resolved to, and the
// local image store's names. It is kept in bbolt; every record is written in
// one transaction once the thing it names is complete on disk, so a killed
// build leaves nothing that a later build would trust.
package cache
