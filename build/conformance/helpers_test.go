package conformance_test

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/internal/userns"
	"github.com/builder-dev/builder/solver"
)

func TestMain(m *testing.M) {
	// RUN steps re-execute this test binary as the sandbox init.
	executor.Init()
	// As an ordinary user the tests run rootless: as root of a user namespace.
	userns.Init(func(w string) { fmt.Fprintln(os.Stderr, "WARNING:", w) })
	os.Exit(m.Run())
}

// stepLogs keeps what a build's steps printed, for the message of a
// build that fails.
type stepLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *stepLogs) Event(ev solver.Event) {
	if ev.Kind != solver.Log {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(ev.Data)
}

func (l *stepLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
