package solver

import (
	"fmt"
	"sort"
	"strings"

	"github.com/builder-dev/builder/llb"
	"github.com/opencontainers/go-digest"
)

// Part is one thing a cache key covers, by name: "command", "env:NAME",
// "file:src/main.go", "input:0" ... Values are compared, not shown, except
// for env and build args.
type Part struct {
	Name, Value string
}

// KeyDescriber is implemented by ops that can list what their last
// CacheKey covered, so that a cache miss can be explained. KeyParts is
// called after CacheKey, only when an explanation or a new step record
// needs the parts.
type KeyDescriber interface {
	KeyParts() []Part
}

// FileParts are the parts of a copy of src from a build context whose
// checksum is sum: a "file:PATH" part per file (files maps each path to a
// digest of it), or a single "content:SRC" part when files is nil.
func FileParts(src, sum string, files map[string]string) []Part {
	if files == nil {
		return []Part{{Name: "content:" + src, Value: sum}}
	}
	parts := make([]Part, 0, len(files))
	for _, f := range llb.SortedKeys(files) {
		parts = append(parts, Part{Name: "file:" + f, Value: files[f]})
	}
	return parts
}

// StepRecord is what a step's key covered in an earlier build.
type StepRecord struct {
	Key   digest.Digest     `json:"key"`
	Parts map[string]string `json:"parts"`
	// Describe, when Parts is nil, gives them: a History that has a record
	// of Key already need not make them (a COPY of a large context has a
	// part per file, and a no-op rebuild has a record of every step).
	Describe func() map[string]string `json:"-"`
}

// History remembers step records between builds. Remember may batch; the
// caller of Solve flushes.
type History interface {
	Previous(stepID string) (StepRecord, bool)
	Remember(stepID string, rec StepRecord)
}

// explain says why v, whose key is key, could not be reused.
func (s *Solver) explain(v *llb.Vertex, key digest.Digest) string {
	id := v.Meta().StepID
	if s.history == nil || id == "" {
		return ""
	}
	if v.Meta().IgnoreCache {
		return "cache disabled (--no-cache)"
	}
	prev, ok := s.history.Previous(id)
	if !ok {
		return "no cache record (first build of this step)"
	}
	if prev.Key == key {
		return "its cache record was removed (pruned) since the last build"
	}
	cur := s.parts(v)
	var reasons, files []string
	for _, name := range sortedNames(prev.Parts, cur) {
		old, had := prev.Parts[name]
		now, has := cur[name]
		if had == has && old == now {
			continue
		}
		kind, what, _ := strings.Cut(name, ":")
		switch kind {
		case "file":
			switch {
			case !had:
				files = append(files, what+" added")
			case !has:
				files = append(files, what+" removed")
			default:
				files = append(files, what+" modified")
			}
		case "env":
			switch {
			case !had:
				reasons = append(reasons, fmt.Sprintf("%s set to %q", what, now))
			case !has:
				reasons = append(reasons, fmt.Sprintf("%s no longer set (was %q)", what, old))
			default:
				reasons = append(reasons, fmt.Sprintf("%s changed %q → %q", what, old, now))
			}
		case "input":
			reasons = append(reasons, "input changed: "+s.inputName(v, what))
		default:
			reasons = append(reasons, name+" changed")
		}
	}
	if len(files) > 0 {
		if len(files) > 3 {
			files = append(files[:3], fmt.Sprintf("and %d more", len(files)-3))
		}
		reasons = append(reasons, "files changed: "+strings.Join(files, ", "))
	}
	if len(reasons) == 0 {
		return "its inputs changed"
	}
	return strings.Join(reasons, "; ")
}

func (s *Solver) inputName(v *llb.Vertex, index string) string {
	var i int
	fmt.Sscan(index, &i)
	if i < 0 || i >= len(v.Inputs()) || v.Inputs()[i] == nil {
		return "input " + index
	}
	in := v.Inputs()[i].Meta()
	name := in.Name
	if j := strings.Index(name, "] "); strings.HasPrefix(name, "[") && j >= 0 {
		name = name[j+2:]
	}
	if loc := in.Location.String(); loc != "" {
		name += " (" + loc + ")"
	}
	return name
}

// parts returns what v's key covered: the op's own parts and its inputs'
// keys.
func (s *Solver) parts(v *llb.Vertex) map[string]string {
	s.mu.Lock()
	p := s.keyParts[v.Digest()]
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	return p()
}

// record notes v's key for the next build's explanations.
func (s *Solver) record(v *llb.Vertex, key digest.Digest) {
	if s.history == nil || v.Meta().StepID == "" {
		return
	}
	s.history.Remember(v.Meta().StepID, StepRecord{Key: key, Describe: func() map[string]string { return s.parts(v) }})
}

func sortedNames(a, b map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]string{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}
