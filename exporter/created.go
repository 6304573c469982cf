package exporter

import (
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fillCreated gives the history entries that have no time (metadata
// instructions, without SOURCE_DATE_EPOCH) one, as BuildKit's exporter
// does: entries before the build's first timed layer get that layer's
// time (not a base image's), later ones the time of the entry before.
// The times come from the layers' step records, so a cached rebuild
// keeps them.
func fillCreated(history []ocispec.History) {
	var created *time.Time
	sawUntimed := false
	for _, h := range history {
		if h.Created == nil {
			sawUntimed = true
			continue
		}
		created = h.Created
		if sawUntimed {
			break
		}
	}
	sawUntimed = false
	for i := range history {
		if history[i].Created == nil {
			sawUntimed = true
			history[i].Created = created
		} else if sawUntimed {
			created = history[i].Created
		}
	}
}

// lastCreated is the config's time when the build sets none: the last
// history entry's, which for a fully cached build is the time the last
// step's record was made.
func lastCreated(history []ocispec.History) *time.Time {
	var t *time.Time
	for _, h := range history {
		if h.Created != nil {
			t = h.Created
		}
	}
	return t
}
