package build

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/solver"
)

// stepHistory keeps solver step records in the state dir, scoped to one
// Dockerfile in one context, and writes the changed ones in one
// transaction when the build ends.
type stepHistory struct {
	db    *cache.DB
	scope string
	mu    sync.Mutex
	dirty map[string][]byte
}

var _ solver.History = (*stepHistory)(nil)

func (h *stepHistory) Previous(stepID string) (solver.StepRecord, bool) {
	var rec solver.StepRecord
	raw, ok := h.db.Step(h.scope + "\x00" + stepID)
	if !ok || json.Unmarshal(raw, &rec) != nil {
		return rec, false
	}
	return rec, true
}

func (h *stepHistory) Remember(stepID string, rec solver.StepRecord) {
	id := h.scope + "\x00" + stepID
	old, had := h.db.Step(id)
	// What a key covers follows from the key: a record of this key is
	// current, and a no-op rebuild then encodes no parts (a COPY of a
	// large context has one per file).
	if had && bytes.HasPrefix(old, []byte(`{"key":"`+rec.Key.String()+`",`)) {
		return
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return
	}
	if had && bytes.Equal(old, raw) {
		return
	}
	h.mu.Lock()
	h.dirty[id] = raw
	h.mu.Unlock()
}

func (h *stepHistory) flush() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.db.PutSteps(h.dirty)
}
