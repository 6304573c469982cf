package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/builder-dev/builder/cache/coord"
	"github.com/builder-dev/builder/server/api"
	"github.com/builder-dev/builder/server/blobs"
	"github.com/builder-dev/builder/server/drain"
	"github.com/builder-dev/builder/server/session"
	"github.com/builder-dev/builder/solver"
)

// BuildFunc runs one build over contextDir, the way `builder build` does,
// sending progress and messages to em. Outputs of the request that come
// back to the client (OutputPath reports which) it writes under outDir at
// OutputPath(outDir, i).
type BuildFunc func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error)

// Server serves the API. Its zero value is not usable; use New.
type Server struct {
	build   BuildFunc
	policy  Policy
	root    string
	blobs   *blobs.Store
	builds  *coord.OwnedDir
	queue   *queue
	metrics metrics
	session session.Registry

	mu       sync.Mutex
	contexts map[string]*syncedContext
	projects map[string]*project
	// gate counts the builds running, up to the end of sending their
	// outputs, for Serve to drain (drain.go).
	gate drain.Gate
}

// project is a context directory kept between builds of one project.
type project struct {
	mu sync.Mutex // held by the build using the directory
	// files is the listing the directory holds; nil when unknown.
	files map[string]api.File
	// use claims the directory from other servers and the GC while a
	// build uses it; token is what this server left there.
	use   *coord.DirUse
	token string
}

// release ends a build's use of the directory, with its size for the GC.
func (p *project) release(size int64) {
	var err error
	if p.token, err = p.use.Release(size); err != nil {
		p.files = nil
	}
	p.mu.Unlock()
}

// syncedContext is a context listing and what its upload cost.
type syncedContext struct {
	files   []api.File
	project string
	// uploads counts blobs and bytes uploaded since the listing.
	uploadFiles int
	uploadBytes int64
}

// New returns a server keeping its content store and build directories
// under root, running at most maxBuilds builds at once (0: no limit).
func New(root string, maxBuilds int, policy Policy, build BuildFunc) (*Server, error) {
	blobsDir := filepath.Join(root, "serve", "blobs")
	if err := os.MkdirAll(blobsDir, 0o700); err != nil {
		return nil, fmt.Errorf("server state: %w", err)
	}
	// Build directories go in one this process owns; those of servers
	// that are gone are removed, those of others on this state kept.
	builds, err := coord.NewOwnedDir(filepath.Join(root, "serve", "builds"))
	if err != nil {
		return nil, fmt.Errorf("server state: %w", err)
	}
	countRegistryBytes()
	return &Server{build: build, policy: policy, root: root, blobs: &blobs.Store{Dir: blobsDir}, builds: builds, queue: newQueue(maxBuilds), contexts: map[string]*syncedContext{}, projects: map[string]*project{}}, nil
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	mux.HandleFunc("POST "+api.Version+"/contexts", s.postContext)
	mux.HandleFunc("PUT "+api.Version+"/contexts/{id}/blobs/{digest}", s.putBlob)
	mux.HandleFunc("POST "+api.Version+"/build", s.postBuild)
	mux.Handle("POST "+api.Version+"/requests/{token}", &s.session)
	return mux
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func httpError(w http.ResponseWriter, code int, err error) {
	http.Error(w, err.Error(), code)
}

func (s *Server) postContext(w http.ResponseWriter, r *http.Request) {
	if s.refused(w) {
		return
	}
	var req api.ContextRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("context listing: %w", err))
		return
	}
	resp := api.ContextResponse{ID: newID(), Missing: []string{}}
	seen := map[string]bool{}
	for _, f := range req.Files {
		if err := blobs.CheckPath(f.Path); err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		if !fs.FileMode(f.Mode).IsRegular() || seen[f.Digest] {
			continue
		}
		if _, err := s.blobs.Path(f.Digest); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("context file %s: %w", f.Path, err))
			return
		}
		seen[f.Digest] = true
		if !s.blobs.Has(f.Digest) {
			resp.Missing = append(resp.Missing, f.Digest)
		}
	}
	s.mu.Lock()
	s.contexts[resp.ID] = &syncedContext{files: req.Files, project: req.Project}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (s *Server) context(id string) *syncedContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contexts[id]
}

func (s *Server) putBlob(w http.ResponseWriter, r *http.Request) {
	if s.refused(w) {
		return
	}
	sc := s.context(r.PathValue("id"))
	if sc == nil {
		httpError(w, http.StatusNotFound, errors.New("no such context"))
		return
	}
	dgst := r.PathValue("digest")
	var size int64 = -1
	for _, f := range sc.files {
		if f.Digest == dgst {
			size = f.Size
			break
		}
	}
	if size < 0 {
		httpError(w, http.StatusBadRequest, fmt.Errorf("%s is not in the context listing", dgst))
		return
	}
	n, err := s.blobs.Put(dgst, size, r.Body)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	s.mu.Lock()
	sc.uploadFiles++
	sc.uploadBytes += n
	s.mu.Unlock()
	s.metrics.syncedBytes.Add(n)
	w.WriteHeader(http.StatusNoContent)
}

// project returns the locked project of key and its context directory, or
// nil when there is no key or another build of it, here or in another
// server, holds the directory (that build then gets a directory of its
// own).
func (s *Server) project(key string) (*project, string) {
	if key == "" {
		return nil, ""
	}
	s.mu.Lock()
	p := s.projects[key]
	if p == nil {
		p = &project{}
		s.projects[key] = p
	}
	s.mu.Unlock()
	if !p.mu.TryLock() {
		return nil, ""
	}
	sum := sha256.Sum256([]byte(key))
	dir := filepath.Join(s.root, "serve", "projects", hex.EncodeToString(sum[:16]))
	use, ok, err := coord.TryUseDir(dir)
	if err != nil || !ok {
		p.mu.Unlock()
		return nil, ""
	}
	if use.Token != p.token {
		p.files = nil // changed by another server, or removed by a prune
	}
	p.use = use
	return p, dir
}

// OutputPath is where a BuildFunc writes output i that goes back to the
// client.
func OutputPath(outDir string, i int) string { return filepath.Join(outDir, strconv.Itoa(i)) }

// Emitter sends a build's events to its client, one JSON line each.
type Emitter struct {
	mu      sync.Mutex
	enc     *json.Encoder
	flush   http.Flusher
	metrics *metrics
	session *session.Registry
}

func (e *Emitter) send(ev api.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.enc.Encode(ev)
	if e.flush != nil {
		e.flush.Flush()
	}
}

// Secret asks the client for secret id, when a step that uses it starts.
func (e *Emitter) Secret(ctx context.Context, id string) ([]byte, error) {
	return e.session.Secret(ctx, e.request, id)
}

// DialSSH asks the client for a connection to its SSH agent id.
func (e *Emitter) DialSSH(ctx context.Context, id string) (net.Conn, error) {
	return e.session.DialSSH(ctx, e.request, id)
}

func (e *Emitter) request(r api.Request) { e.send(api.Event{Kind: api.KindRequest, Request: &r}) }

// Message sends a line for the client's stderr.
func (e *Emitter) Message(text string) { e.send(api.Event{Kind: api.KindMessage, Text: text}) }

// Event sends a solver event; it makes an Emitter a solver.Progress.
func (e *Emitter) Event(ev solver.Event) {
	switch ev.Kind {
	case solver.Cached:
		e.metrics.cacheHits.Add(1)
	case solver.Started:
		e.metrics.cacheMisses.Add(1)
	}
	e.send(api.Event{Kind: api.KindProgress, Progress: EncodeProgress(ev)})
}

var _ solver.Progress = (*Emitter)(nil)

func (s *Server) postBuild(w http.ResponseWriter, r *http.Request) {
	if s.refused(w) {
		return
	}
	var req api.BuildRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("build request: %w", err))
		return
	}
	if err := s.policy.Check(&req); err != nil {
		httpError(w, http.StatusForbidden, err)
		return
	}
	sc := s.context(req.Context)
	if sc == nil {
		httpError(w, http.StatusNotFound, fmt.Errorf("context %q: no such context", req.Context))
		return
	}
	// A listing serves one build.
	defer func() {
		s.mu.Lock()
		delete(s.contexts, req.Context)
		for _, id := range req.LocalContexts {
			delete(s.contexts, id)
		}
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	em := &Emitter{enc: json.NewEncoder(w), flush: flusher, metrics: &s.metrics, session: &s.session}
	res, err := s.runBuild(r.Context(), &req, sc, em)
	if err != nil {
		em.send(api.Event{Kind: api.KindResult, Error: encodeError(err)})
		return
	}
	em.send(api.Event{Kind: api.KindResult, Result: res})
}

func (s *Server) runBuild(ctx context.Context, req *api.BuildRequest, sc *syncedContext, em *Emitter) (*api.Result, error) {
	release, err := s.queue.wait(ctx, func(pos int) { em.send(api.Event{Kind: api.KindQueued, Position: pos}) })
	if err != nil {
		return nil, err
	}
	defer release()
	// Serve drains the builds admitted before its stop, up to the end of
	// their outputs, and refuses those queued. Deferred: a panic in the
	// build (net/http recovers it) must not keep Serve waiting for good.
	done, err := s.gate.Start()
	if err != nil {
		return nil, err
	}
	defer done()
	s.metrics.running.Add(1)
	defer s.metrics.running.Add(-1)
	dir, err := os.MkdirTemp(s.builds.Path, "build-")
	if err != nil {
		return nil, err
	}
	// Removing many files can take seconds: the client need not wait.
	defer func() { go os.RemoveAll(dir) }()
	contextDir, outDir := filepath.Join(dir, "context"), filepath.Join(dir, "out")
	if err := os.Mkdir(outDir, 0o700); err != nil {
		return nil, err
	}
	if p, dir := s.project(sc.project); p != nil {
		var size int64
		for _, f := range sc.files {
			size += f.Size
		}
		defer p.release(size)
		contextDir = dir
		if p.files == nil {
			// Left by an earlier server, or by a failed update.
			os.RemoveAll(dir)
		}
		err = s.blobs.Update(dir, p.files, sc.files)
		p.files = nil
		if err == nil {
			p.files = make(map[string]api.File, len(sc.files))
			for _, f := range sc.files {
				p.files[f.Path] = f
			}
		} else {
			// What the directory holds is unknown: start afresh next time.
			os.RemoveAll(dir)
		}
	} else {
		err = s.blobs.Assemble(contextDir, sc.files)
	}
	if err != nil {
		return nil, fmt.Errorf("assembling the build context: %w", err)
	}
	namedFiles, namedBytes, err := s.namedContexts(req, dir)
	if err != nil {
		return nil, err
	}
	res, err := s.build(ctx, req, contextDir, outDir, em)
	if err != nil {
		return nil, err
	}
	if err := sendOutputs(ctx, req, outDir, em); err != nil {
		return nil, err
	}
	s.mu.Lock()
	res.SyncedFiles, res.SyncedBytes = sc.uploadFiles+namedFiles, sc.uploadBytes+namedBytes
	s.mu.Unlock()
	return res, nil
}
