// Package gc is the state directory's garbage collection: the leases of
// the builds running (what each build used of the cache), the automatic GC
// at the end of a build, `builder prune` and `builder du`. gcplan.Collect
// plans what goes; this package reads the state directory into a graph
// for it and removes what the plan names.
package gc
