package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/builder-dev/builder/server/api"
	"github.com/builder-dev/builder/server/session"
	"github.com/builder-dev/builder/server/sink"
	"github.com/builder-dev/builder/source/localctx"
)

// Client talks to one server.
type Client struct {
	http *http.Client
	base string
}

// Dial returns a client for host: unix:///path or tcp://host:port (with
// mutual TLS when tlsFiles are set).
func Dial(host string, tlsFiles TLSFiles) (*Client, error) {
	scheme, rest, ok := strings.Cut(host, "://")
	if !ok {
		return nil, fmt.Errorf("--host %s: want unix:///PATH or tcp://HOST:PORT", host)
	}
	tr := &http.Transport{}
	c := &Client{http: &http.Client{Transport: tr}}
	switch scheme {
	case "unix":
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", rest)
		}
		c.base = "http://builder"
	case "tcp":
		c.base = "http://" + rest
		if tlsFiles.Set() {
			cfg, err := tlsFiles.Config(false)
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig = cfg
			c.base = "https://" + rest
		}
	default:
		return nil, fmt.Errorf("--host %s: unknown scheme %q (unix or tcp)", host, scheme)
	}
	return c, nil
}

// Handlers receive a build's events on the client.
type Handlers struct {
	Progress func(*api.Progress)
	Message  func(string)
	Stdout   func(string) // a line for the client's stdout
	Queued   func(pos int)
	// Local answers the build's requests for secrets and SSH agents.
	Local session.Local
}

// Output is where an -o value's data lands on the client.
type Output = sink.Output

// Trees are a build's contexts on the client: the main one (what its
// .dockerignore keeps) and the directories of --build-context, by name.
type Trees struct {
	Main  *localctx.Tree
	Named map[string]*localctx.Tree
}

// Build syncs the context trees, runs req on the server and writes client
// outputs (by index into req.Outputs) to outputs. project, when set, lets
// the server keep the main context between builds (RouteKey).
func (c *Client) Build(ctx context.Context, trees Trees, project string, req *api.BuildRequest, outputs map[int]Output, h Handlers) (*api.Result, error) {
	// Answers (an SSH agent's forwarding) end with the build.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	id, err := c.sync(ctx, trees.Main, project)
	if err != nil {
		return nil, err
	}
	req.Context, req.LocalContexts = id, nil
	for name, t := range trees.Named {
		id, err := c.sync(ctx, t, "")
		if err != nil {
			return nil, fmt.Errorf("--build-context %s: %w", name, err)
		}
		if req.LocalContexts == nil {
			req.LocalContexts = map[string]string{}
		}
		req.LocalContexts[name] = id
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodPost, api.Version+"/build", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	outs := sink.New(ctx, outputs)
	defer outs.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var ev api.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("reading the server's events: %w", err)
		}
		switch ev.Kind {
		case api.KindQueued:
			if h.Queued != nil {
				h.Queued(ev.Position)
			}
		case api.KindProgress:
			if ev.Progress != nil && h.Progress != nil {
				h.Progress(ev.Progress)
			}
		case api.KindMessage:
			if ev.Stdout && h.Stdout != nil {
				h.Stdout(ev.Text)
			} else if !ev.Stdout && h.Message != nil {
				h.Message(ev.Text)
			}
		case api.KindRequest:
			if ev.Request != nil {
				go func(r api.Request) {
					if err := h.Local.Answer(ctx, c.http, c.base+api.Version+"/requests/"+r.Token, r); err != nil && ctx.Err() == nil && h.Message != nil {
						h.Message(fmt.Sprintf("WARNING: answering the server's %s %s request: %v", r.Type, r.ID, err))
					}
				}(*ev.Request)
			}
		case api.KindOutput:
			if err := outs.Write(ev.Output, ev.Data); err != nil {
				return nil, err
			}
		case api.KindResult:
			if ev.Error != nil {
				return nil, decodeError(ev.Error)
			}
			if err := outs.Close(); err != nil {
				return nil, err
			}
			return ev.Result, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the server's events: %w", err)
	}
	return nil, errors.New("the server ended the build without a result")
}

// do sends a request and fails on a non-2xx answer, with its text.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	r, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(r)
	if err != nil {
		if unreachable(err) {
			return nil, fmt.Errorf("builder server: %w (%w)", err, ErrUnreachable)
		}
		return nil, fmt.Errorf("builder server: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		err := fmt.Errorf("builder server: %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
		if resp.StatusCode == http.StatusServiceUnavailable {
			// Draining: it takes no new build, the next server may.
			err = fmt.Errorf("%w (%w)", err, ErrUnreachable)
		}
		return nil, err
	}
	return resp, nil
}

// sync lists the tree with the checksum walk and uploads what the server
// lacks.
func (c *Client) sync(ctx context.Context, t *localctx.Tree, project string) (string, error) {
	entries, err := t.Manifest()
	if err != nil {
		return "", err
	}
	req := api.ContextRequest{Project: project}
	where := map[string]string{}
	for _, e := range entries {
		f := api.File{Path: e.Path, Mode: uint32(e.Mode), Link: e.Link, MtimeNs: e.MtimeNs}
		if e.Mode.IsRegular() {
			f.Digest, f.Size = "sha256:"+hex.EncodeToString(e.Sum[:]), e.Size
			where[f.Digest] = filepath.Join(t.Root, filepath.FromSlash(e.Path))
		}
		req.Files = append(req.Files, f)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	resp, err := c.do(ctx, http.MethodPost, api.Version+"/contexts", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	var cr api.ContextResponse
	err = json.NewDecoder(resp.Body).Decode(&cr)
	resp.Body.Close()
	if err != nil {
		return "", fmt.Errorf("builder server: context listing answer: %w", err)
	}
	for _, d := range cr.Missing {
		p, ok := where[d]
		if !ok {
			return "", fmt.Errorf("builder server asked for %s, which the context does not hold", d)
		}
		if err := c.upload(ctx, cr.ID, d, p); err != nil {
			return "", err
		}
	}
	return cr.ID, nil
}

func (c *Client) upload(ctx context.Context, id, dgst, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	resp, err := c.do(ctx, http.MethodPut, api.Version+"/contexts/"+id+"/blobs/"+dgst, f)
	if err != nil {
		return fmt.Errorf("uploading %s: %w", p, err)
	}
	resp.Body.Close()
	return nil
}
