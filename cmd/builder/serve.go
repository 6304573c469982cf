package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/server"
	"github.com/builder-dev/builder/server/api"
	"github.com/builder-dev/builder/solver"
	"github.com/spf13/cobra"
)

// remoteFlags are the global flags of the client of `builder serve`.
type remoteFlags struct {
	host string
	tls  server.TLSFiles
}

// addServe adds `builder serve` and the global --host flags.
func addServe(root *cobra.Command, g *globalOptions) {
	pf := root.PersistentFlags()
	pf.StringVar(&g.host, "host", os.Getenv("BUILDER_HOST"), "build on a `builder serve` server: unix:///PATH or tcp://HOST:PORT; several, comma-separated, route each project to one by a consistent hash and fail over to the next (default $BUILDER_HOST)")
	pf.StringVar(&g.tls.CA, "tlscacert", "", "with --host tcp://, or serve: CA certificate (PEM) of the other side")
	pf.StringVar(&g.tls.Cert, "tlscert", "", "with --host tcp://, or serve: this side's certificate (PEM)")
	pf.StringVar(&g.tls.Key, "tlskey", "", "with --host tcp://, or serve: this side's key (PEM)")
	root.AddCommand(newServeCommand(g))
}

func newServeCommand(g *globalOptions) *cobra.Command {
	var addr string
	var maxBuilds int
	var insecureListen bool
	var policy server.Policy
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve builds to remote clients (builder --host)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			root := g.root
			if root == "" {
				root = build.DefaultRoot()
			}
			srv, err := server.New(root, maxBuilds, policy, serveBuildFunc(cmd, g))
			if err != nil {
				return err
			}
			l, err := server.Listen(addr, g.tls, insecureListen)
			if err != nil {
				return err
			}
			hs := &http.Server{Handler: srv.Handler()}
			go func() {
				<-cmd.Context().Done()
				hs.Close()
			}()
			fmt.Fprintf(cmd.ErrOrStderr(), "serving on %s\n", addr)
			if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "unix:///run/builder/builder.sock", "listen on unix:///PATH (mode 0660) or tcp://HOST:PORT (mutual TLS)")
	cmd.Flags().IntVar(&maxBuilds, "max-builds", 0, "run at most N builds at once; others wait in a queue (0: no limit)")
	cmd.Flags().StringArrayVar(&policy.Allow, "allow", nil, "entitlement clients may use with build --allow: network.host, security.insecure (default: none)")
	cmd.Flags().BoolVar(&insecureListen, "insecure-listen", false, "allow plain TCP without TLS, on a loopback address only")
	return cmd
}

// serveHooks let runBuild serve a remote client: its progress goes to the
// client, its secrets come from the request, its result is kept.
type serveHooks struct {
	em      *server.Emitter
	secrets map[string][]byte
	res     *build.Result
}

func (h *serveHooks) printer(p progressPrinter) progressPrinter {
	if h == nil {
		return p
	}
	return h
}

func (h *serveHooks) Event(e solver.Event) { h.em.Event(e) }
func (h *serveHooks) Close(error)          {}

func (h *serveHooks) setSecrets(s map[string]build.Secret) {
	if h == nil {
		return
	}
	for id, v := range h.secrets {
		s[id] = build.Secret{Value: v}
	}
}

func (h *serveHooks) setResult(res *build.Result) {
	if h != nil {
		h.res = res
	}
}

// lineWriter sends each line written to it as a message to the client.
type lineWriter struct {
	mu  sync.Mutex
	em  *server.Emitter
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.em.Message(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// serveBuildFunc runs a client's request through runBuild, as the same
// flags given on the command line would.
func serveBuildFunc(parent *cobra.Command, g *globalOptions) server.BuildFunc {
	return func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *server.Emitter) (*api.Result, error) {
		f := &buildFlags{
			tags: req.Tags, file: "-", target: req.Target, noCache: req.NoCache, noCacheFilter: req.NoCacheFilter,
			push: req.Push, progress: "plain", allow: req.Allow, network: req.Network, cacheTo: req.CacheTo, cacheFrom: req.CacheFrom,
			parallelism: req.Parallelism, squashAbove: req.SquashAbove, stepTimeout: req.StepTimeout, httpTimeout: req.HTTPTimeout,
			httpMaxSize: req.HTTPMaxSize, gcKeep: req.GCKeep, onError: "fail",
			serve: &serveHooks{em: em, secrets: req.Secrets},
		}
		if req.Quiet {
			f.progress = "quiet"
		}
		if f.network == "" {
			f.network = "default"
		}
		for k, v := range req.BuildArgs {
			f.buildArgs = append(f.buildArgs, k+"="+v)
		}
		for i, o := range req.Outputs {
			client, _, err := server.ClientOutput(o)
			if err != nil {
				return nil, err
			}
			if client {
				o = setDest(o, server.OutputPath(outDir, i))
			}
			f.outputs = append(f.outputs, o)
		}
		if req.Metadata {
			f.metadataFile = filepath.Join(outDir, "metadata.json")
		}
		cmd := &cobra.Command{}
		cmd.SetContext(ctx)
		cmd.SetIn(bytes.NewReader(req.Dockerfile))
		cmd.SetOut(io.Discard)
		cmd.SetErr(&lineWriter{em: em})
		local := *g
		local.remoteFlags = remoteFlags{}
		if err := runBuild(cmd, &local, f, contextDir); err != nil {
			return nil, err
		}
		res := &api.Result{Digest: f.serve.res.Manifest.Digest.String(), Names: f.serve.res.Names}
		if req.Metadata {
			b, err := os.ReadFile(f.metadataFile)
			if err != nil {
				return nil, err
			}
			res.Metadata = b
		}
		return res, nil
	}
}

// setDest replaces an -o value's dest with a path of the server.
func setDest(spec, dest string) string {
	if !strings.Contains(spec, "=") {
		return "type=local,dest=" + dest
	}
	var fields []string
	for _, f := range strings.Split(spec, ",") {
		if k, _, _ := strings.Cut(f, "="); strings.EqualFold(strings.TrimSpace(k), "dest") {
			continue
		}
		fields = append(fields, f)
	}
	return strings.Join(append(fields, "dest="+dest), ",")
}
