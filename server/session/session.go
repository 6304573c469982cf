// Package session carries what a remote build asks its client for while a
// step runs: a secret's value or a connection to the client's SSH agent.
// The server asks (a request event with a one-time token) when the step
// that needs it starts; the client answers on POST /v1/requests/{token}.
// Nothing of it is written to the server's disk.
package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"crypto/rand"
	"encoding/hex"

	"github.com/builder-dev/builder/server/api"
)

// Timeout bounds the wait for a client's answer: a client that never
// answers (or an older one) fails the step instead of hanging it.
var Timeout = time.Minute

// maxSecret bounds a secret's answer (BuildKit's limit is 500 KiB; base64
// in JSON grows it by a third).
const maxSecret = 1 << 20

// Registry holds the requests waiting for their answers, by token.
type Registry struct {
	mu      sync.Mutex
	pending map[string]*pending
}

type pending struct {
	typ string
	ch  chan answer // buffered: the answering handler never blocks
}

type answer struct {
	value []byte
	conn  net.Conn
	err   error
}

// Send sends a request event to the build's client.
type Send func(api.Request)

// Secret asks the client for secret id.
func (r *Registry) Secret(ctx context.Context, send Send, id string) ([]byte, error) {
	a, err := r.ask(ctx, send, api.RequestSecret, id)
	return a.value, err
}

// DialSSH asks the client for a connection to its SSH agent id.
func (r *Registry) DialSSH(ctx context.Context, send Send, id string) (net.Conn, error) {
	a, err := r.ask(ctx, send, api.RequestSSH, id)
	if err != nil {
		return nil, fmt.Errorf("ssh agent %s: %w", id, err)
	}
	return a.conn, nil
}

func (r *Registry) ask(ctx context.Context, send Send, typ, id string) (answer, error) {
	b := make([]byte, 16)
	rand.Read(b)
	token := hex.EncodeToString(b)
	p := &pending{typ: typ, ch: make(chan answer, 1)}
	r.mu.Lock()
	if r.pending == nil {
		r.pending = map[string]*pending{}
	}
	r.pending[token] = p
	r.mu.Unlock()
	send(api.Request{Token: token, Type: typ, ID: id})
	t := time.NewTimer(Timeout)
	defer t.Stop()
	var err error
	select {
	case a := <-p.ch:
		return a, a.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = fmt.Errorf("the client did not answer within %v", Timeout)
	}
	if r.take(token) == nil {
		// The answer is on its way: a connection must not leak.
		if a := <-p.ch; a.conn != nil {
			a.conn.Close()
		}
	}
	return answer{}, err
}

func (r *Registry) take(token string) *pending {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending[token]
	delete(r.pending, token)
	return p
}

// ServeHTTP answers POST /v1/requests/{token}: a token is good for one
// answer.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p := r.take(req.PathValue("token"))
	if p == nil {
		http.Error(w, "no such request", http.StatusNotFound)
		return
	}
	if p.typ == api.RequestSSH && req.Header.Get("Upgrade") == api.SSHUpgrade {
		p.ch <- upgrade(w)
		return
	}
	var a api.Answer
	if err := json.NewDecoder(io.LimitReader(req.Body, maxSecret)).Decode(&a); err != nil {
		p.ch <- answer{err: fmt.Errorf("the client's answer: %w", err)}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch {
	case a.Error != "":
		p.ch <- answer{err: fmt.Errorf("the client: %s", a.Error)}
	case p.typ == api.RequestSSH:
		p.ch <- answer{err: errors.New("the client answered without a connection")}
	default:
		p.ch <- answer{value: a.Value}
	}
	w.WriteHeader(http.StatusNoContent)
}

// upgrade switches the answer's connection to a raw stream to the
// client's agent.
func upgrade(w http.ResponseWriter) answer {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return answer{err: fmt.Errorf("taking over the client's connection: %w", err)}
	}
	// The client writes nothing before it reads the switch, so nothing
	// is left in the reader: the raw connection is the whole stream.
	if brw.Reader.Buffered() > 0 {
		conn.Close()
		return answer{err: errors.New("the client sent data before the protocol switch")}
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + api.SSHUpgrade + "\r\n\r\n")
	if err := brw.Flush(); err != nil {
		conn.Close()
		return answer{err: err}
	}
	return answer{conn: conn}
}
