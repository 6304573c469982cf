// Package stephistory keeps the solver's step records of a build in the
// state dir, for --explain and the next build's comparisons.
package stephistory

import (
	"encoding/json"
	"sync"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/solver"
)

// History keeps solver step records in the state dir, scoped to one
// Dockerfile in one context, and hands the changed ones to the database
// when the build ends, as hints that ride in its last write transaction
// (cache.DB.PutSteps).
type History struct {
	db    *cache.DB
	scope string
	mu    sync.Mutex
	dirty map[string][]byte
}

var _ solver.History = (*History)(nil)

// New is the history of scope in db.
func New(db *cache.DB, scope string) *History {
	return &History{db: db, scope: scope, dirty: map[string][]byte{}}
}

// Scope names the Dockerfile and context the records belong to.
func (h *History) Scope() string { return h.scope }

func (h *History) Previous(stepID string) (solver.StepRecord, bool) {
	var rec solver.StepRecord
	raw, ok := h.db.Step(h.scope + "\x00" + stepID)
	if !ok || json.Unmarshal(raw, &rec) != nil {
		return rec, false
	}
	return rec, true
}

func (h *History) Remember(stepID string, rec solver.StepRecord) {
	id := h.scope + "\x00" + stepID
	// What a key covers follows from the key: a record of this key is
	// current, and a no-op rebuild then neither reads the record out nor
	// makes and encodes the parts (a COPY of a large context has one per
	// file). A record of another key differs from the new one from its
	// first bytes on.
	if h.db.StepHasPrefix(id, []byte(`{"key":"`+rec.Key.String()+`",`)) {
		return
	}
	if rec.Parts == nil && rec.Describe != nil {
		rec.Parts = rec.Describe()
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return
	}
	h.mu.Lock()
	h.dirty[id] = raw
	h.mu.Unlock()
}

// Flush hands the records remembered since the last Flush to the
// database, which writes them with its next write transaction (the
// build's FinishUse writes them at the latest).
func (h *History) Flush() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.db.PutSteps(h.dirty)
	// Handed over: the next Flush hands only what is remembered after this.
	h.dirty = map[string][]byte{}
	return nil
}
