package session

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/builder-dev/builder/server/api"
)

// Local is what a client offers its build: secrets, read when the server
// asks, and SSH agent sockets, by id.
type Local struct {
	Secrets map[string]func() ([]byte, error)
	SSH     map[string]string
}

// Answer answers req at url, the server's POST /v1/requests/{token}, with
// hc. An SSH connection is forwarded until either side closes it or ctx
// ends.
func (l Local) Answer(ctx context.Context, hc *http.Client, url string, req api.Request) error {
	switch req.Type {
	case api.RequestSecret:
		read, ok := l.Secrets[req.ID]
		if !ok {
			return post(ctx, hc, url, api.Answer{Error: "secret " + req.ID + " was not given to the build"})
		}
		v, err := read()
		if err != nil {
			return post(ctx, hc, url, api.Answer{Error: fmt.Sprintf("secret %s: %v", req.ID, err)})
		}
		return post(ctx, hc, url, api.Answer{Value: v})
	case api.RequestSSH:
		sock, ok := l.SSH[req.ID]
		if !ok {
			return post(ctx, hc, url, api.Answer{Error: "ssh agent " + req.ID + " was not given to the build"})
		}
		agent, err := (&net.Dialer{}).DialContext(ctx, "unix", sock)
		if err != nil {
			return post(ctx, hc, url, api.Answer{Error: fmt.Sprintf("ssh agent %s: %v", req.ID, err)})
		}
		return forward(ctx, hc, url, agent.(*net.UnixConn))
	}
	return post(ctx, hc, url, api.Answer{Error: "unknown request type " + req.Type})
}

func post(ctx context.Context, hc *http.Client, url string, a api.Answer) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := hc.Do(r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("answering the server: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// forward upgrades a request to url to a raw stream and copies it to and
// from the agent's connection.
func forward(ctx context.Context, hc *http.Client, url string, agent *net.UnixConn) error {
	defer agent.Close()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", api.SSHUpgrade)
	resp, err := hc.Do(r)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return fmt.Errorf("forwarding the ssh agent: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	stream, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return fmt.Errorf("forwarding the ssh agent: the switched connection is not writable")
	}
	stop := context.AfterFunc(ctx, func() { stream.Close(); agent.Close() })
	defer stop()
	defer stream.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(stream, agent)
		close(done)
	}()
	io.Copy(agent, stream)
	// The step closed its end: the agent sees EOF and closes its own.
	agent.CloseWrite()
	<-done
	return nil
}
