package history

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func rec(i int) *Record {
	start := time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)
	return &Record{ID: NewID(start), Start: start, End: start.Add(time.Second), Steps: []Step{{Index: 1, Name: "RUN x", Status: "done"}}}
}

func TestAddListResolve(t *testing.T) {
	s := &Store{Dir: t.TempDir(), MaxRecords: 3}
	var ids []string
	for i := range 5 {
		r := rec(i)
		ids = append(ids, r.ID)
		if err := s.Add(r, map[int][]byte{1: []byte(strings.Repeat("x", LogTail) + fmt.Sprint("tail", i))}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.List()
	if err != nil || len(recs) != 3 || recs[0].ID != ids[4] || recs[2].ID != ids[2] {
		t.Fatalf("List() = %d records (newest %v), %v; want the 3 newest", len(recs), recs[0].ID, err)
	}
	if _, err := s.Get(ids[1]); !os.IsNotExist(err) {
		t.Errorf("Get(trimmed record) = %v, want not exist", err)
	}
	if ents, _ := os.ReadDir(s.Dir); len(ents) != 3 {
		t.Errorf("%d files in the store, want 3 records", len(ents))
	}
	logs, err := s.Logs(ids[4], 1)
	if err != nil || len(logs) != LogTail || !strings.HasSuffix(string(logs), "tail4") {
		t.Errorf("Logs() = %d bytes ending %q, %v; want the last %d", len(logs), logs[max(0, len(logs)-5):], err, LogTail)
	}
	for _, tc := range []struct{ ref, want, err string }{
		{"last", ids[4], ""},
		{"^2", ids[2], ""},
		{"^3", "", "only 3 builds"},
		{ids[3][len(ids[3])-6:], ids[3], ""},
		{"2026", "", "ambiguous"},
		{"nope", "", "no recorded build"},
	} {
		got, err := s.Resolve(tc.ref)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %q", tc.ref, got, err, tc.want, tc.err)
		}
	}
	for _, bad := range []string{"../x", ".hidden", "a/b", ""} {
		if _, err := s.Get(bad); err == nil || !strings.Contains(err.Error(), "invalid") {
			t.Errorf("Get(%q) = %v, want invalid ID", bad, err)
		}
	}
	if n, err := s.Clear(); n != 3 || err != nil {
		t.Errorf("Clear() = %d, %v", n, err)
	}
	if _, err := s.Resolve("last"); err == nil {
		t.Error("Resolve(last) on an empty store succeeded")
	}
}

// The size bound removes the oldest records; a single record larger than
// the bound stays.
func TestTrimBySize(t *testing.T) {
	s := &Store{Dir: t.TempDir(), MaxBytes: 3 * LogTail}
	for i := range 6 {
		if err := s.Add(rec(i), map[int][]byte{1: []byte(strings.Repeat("y", LogTail))}); err != nil {
			t.Fatal(err)
		}
	}
	recs, _ := s.List()
	var total int64
	filepath.WalkDir(s.Dir, func(p string, d os.DirEntry, err error) error {
		if fi, err := d.Info(); err == nil && !d.IsDir() {
			total += fi.Size()
		}
		return nil
	})
	if len(recs) == 0 || len(recs) > 3 || total > s.MaxBytes {
		t.Errorf("after 6 records of %d bytes with a %d byte bound: %d records, %d bytes", LogTail, s.MaxBytes, len(recs), total)
	}
	big := &Store{Dir: t.TempDir(), MaxBytes: 10}
	big.Add(rec(0), map[int][]byte{1: []byte("more than ten bytes")})
	if recs, _ := big.List(); len(recs) != 1 {
		t.Errorf("the newest record was trimmed: %d left", len(recs))
	}
}

// BenchmarkAdd is the cost a build pays for its record (target: under
// 1 ms with 200 records in the store).
func BenchmarkAdd(b *testing.B) {
	s := &Store{Dir: b.TempDir()}
	for i := range DefaultMaxRecords {
		s.Add(rec(i), map[int][]byte{1: []byte("log line\n")})
	}
	for i := 0; b.Loop(); i++ {
		r := rec(1000 + i)
		if err := s.Add(r, map[int][]byte{1: []byte("log line\n")}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList reads 200 records, as `builder history` does (target: the
// command under 50 ms).
func BenchmarkList(b *testing.B) {
	s := &Store{Dir: b.TempDir()}
	for i := range DefaultMaxRecords {
		r := rec(i)
		for j := 2; j < 30; j++ {
			r.Steps = append(r.Steps, Step{Index: j, Name: "RUN some command here", Status: "cached"})
		}
		s.Add(r, nil)
	}
	for b.Loop() {
		if recs, err := s.List(); err != nil || len(recs) != DefaultMaxRecords {
			b.Fatal(len(recs), err)
		}
	}
}
