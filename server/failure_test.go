package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/progress"
	"github.com/builder-dev/builder/server/api"
	"github.com/builder-dev/builder/solver"
)

// serveUnix serves srv on a UNIX socket for the test and returns its --host.
func serveUnix(t *testing.T, srv *Server) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen("unix://"+sock, TLSFiles{}, false)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return "unix://" + sock
}

// TestRemoteFailedStepSummary: a step that fails on the server shows its
// last output lines above the error on the client, as a local build does,
// and the error reads as the server's.
func TestRemoteFailedStepSummary(t *testing.T) {
	stepErr := &solver.VertexError{Instruction: "RUN make", Output: []string{"cc -c a.c", "a.c:1: error: boom"}, Err: errors.New("exit code 2")}
	srv, err := New(t.TempDir(), 0, Policy{}, func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error) {
		return nil, stepErr
	})
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	printer, err := progress.New(&stderr, "plain")
	if err != nil {
		t.Fatal(err)
	}
	err = RunRemote(t.Context(), Remote{Hosts: []string{serveUnix(t, srv)}, ContextDir: t.TempDir(), Request: &api.BuildRequest{}, Printer: printer, SumsDir: t.TempDir()}, &bytes.Buffer{}, &stderr)
	if err == nil || err.Error() != stepErr.Error() {
		t.Fatalf("remote build error = %v, want %q", err, stepErr.Error())
	}
	want := "------\n > RUN make:\ncc -c a.c\na.c:1: error: boom\n------\n"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("client's stderr lacks the failed step's summary %q:\n%s", want, stderr.String())
	}
}
