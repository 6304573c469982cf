package progress

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestLinesPrefixed: writers used at once give whole prefixed lines.
func TestLinesPrefixed(t *testing.T) {
	var buf bytes.Buffer
	l := NewLines(&buf)
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b", "c"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := l.Prefixed("[" + name + "] ")
			for i := range 100 {
				fmt.Fprintf(w, "line %d of ", i)
				fmt.Fprintf(w, "%s\n", name)
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 300 {
		t.Fatalf("%d lines, want 300", len(lines))
	}
	for _, line := range lines {
		name := line[1:2]
		if !strings.HasPrefix(line, "["+name+"] line ") || !strings.HasSuffix(line, " of "+name) {
			t.Errorf("line %q is not one whole line of one writer", line)
		}
	}
}
