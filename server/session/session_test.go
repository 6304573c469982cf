package session

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/server/api"
)

// serve runs a registry's answer endpoint and returns its base URL.
func serve(t *testing.T, r *Registry) string {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/requests/{token}", r)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/v1/requests/"
}

func TestSecretAskedAndAnswered(t *testing.T) {
	r := &Registry{}
	base := serve(t, r)
	local := Local{Secrets: map[string]func() ([]byte, error){"s": func() ([]byte, error) { return []byte("value"), nil }}}
	var tokens []string
	send := func(req api.Request) {
		tokens = append(tokens, req.Token)
		go local.Answer(context.Background(), http.DefaultClient, base+req.Token, req)
	}
	v, err := r.Secret(context.Background(), send, "s")
	if err != nil || string(v) != "value" {
		t.Fatalf("Secret = %q, %v; want value", v, err)
	}
	// A token answers once: a second answer (a replay) is refused.
	resp, err := http.Post(base+tokens[0], "application/json", strings.NewReader(`{"value":"b3RoZXI="}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a replayed answer got %s, want 404", resp.Status)
	}
	// A secret the client does not have fails the ask with the reason.
	if _, err := r.Secret(context.Background(), send, "other"); err == nil || !strings.Contains(err.Error(), "was not given") {
		t.Errorf("asking for a secret the client lacks: err = %v", err)
	}
	if len(r.pending) != 0 {
		t.Errorf("%d requests left pending", len(r.pending))
	}
}

func TestAskTimesOut(t *testing.T) {
	old := Timeout
	Timeout = 50 * time.Millisecond
	defer func() { Timeout = old }()
	r := &Registry{}
	if _, err := r.Secret(context.Background(), func(api.Request) {}, "s"); err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Errorf("an unanswered ask: err = %v", err)
	}
	if len(r.pending) != 0 {
		t.Errorf("%d requests left pending", len(r.pending))
	}
}

// TestSSHForwarded connects through the registry to a client's "agent",
// an echo server on a Unix socket, and back.
func TestSSHForwarded(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	r := &Registry{}
	base := serve(t, r)
	local := Local{SSH: map[string]string{"default": sock}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	send := func(req api.Request) { go local.Answer(ctx, http.DefaultClient, base+req.Token, req) }
	conn, err := r.DialSSH(ctx, send, "default")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("ping"))
	conn.(interface{ CloseWrite() error }).CloseWrite()
	b, err := io.ReadAll(conn)
	if err != nil || string(b) != "ping" {
		t.Errorf("through the forwarded agent: %q, %v; want the echo", b, err)
	}
	if _, err := r.DialSSH(ctx, send, "nothere"); err == nil {
		t.Error("an agent the client does not have was dialled")
	}
}
