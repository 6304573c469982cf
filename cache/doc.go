// Package cache owns the state directory's metadata: snapshot records (the
// layer chain of every result), cache keys and what they resolved to, and the
// local image store's names. It is kept in bbolt; every record is written in
// one transaction once the thing it names is complete on disk, so a killed
// build leaves nothing that a later build would trust. Records nothing
// trusts (file digests, step history: hints.go) are queued and ride in the
// next write transaction instead of paying two fdatasyncs of their own;
// package cache/usage keeps last-use times, sizes and the usage total.
//
// Builds in several processes share one state directory: the database is
// open only for short bursts of transactions, each process leases what it
// uses so that a GC elsewhere spares it, and a step being computed is
// locked by its cache key so that another build waits for it instead of
// computing it too; package coord has the mechanisms. Package gcplan
// plans a GC from these records.
package cache
