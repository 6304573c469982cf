package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cmd/builder/internal/remoteflags"
	"github.com/builder-dev/builder/server"
	"github.com/builder-dev/builder/server/api"
	"github.com/builder-dev/builder/solver"
	"github.com/spf13/cobra"
)

// serveGrace is how long builds running may go on once `builder serve`
// is told to stop.
const serveGrace = 10 * time.Second

// remoteFlags are the global flags of the client of `builder serve`.
type remoteFlags struct {
	host string
	tls  server.TLSFiles
	// serve is set when runBuild runs for a `builder serve` client.
	serve *serveHooks
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
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			root := g.root
			if root == "" {
				root = build.DefaultRoot()
			}
			// One state for the server's life keeps its database warm;
			// its builds hold leases of their own (cache.DB.ReleaseOwnLease).
			st, err := openState(cmd, g)
			if err != nil {
				return err
			}
			defer func() {
				// Builds outlived their cancellation: a killed process too
				// would leave the state open under them.
				if !errors.Is(err, server.ErrBuildsRunning) {
					st.Close()
				}
			}()
			if err := st.DB.ReleaseOwnLease(); err != nil {
				return err
			}
			srv, err := server.New(root, maxBuilds, policy, serveBuildFunc(cmd, g, st))
			if err != nil {
				return err
			}
			l, err := server.Listen(addr, g.tls, insecureListen)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "serving on %s\n", addr)
			// The state closes (deferred) once no build runs: builds get
			// serveGrace to end after a signal, then are cancelled, or at
			// a second signal.
			return srv.Serve(cmd.Context(), l, serveGrace, server.SecondSignal())
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "unix:///run/builder/builder.sock", "listen on unix:///PATH (mode 0660) or tcp://HOST:PORT (mutual TLS)")
	cmd.Flags().IntVar(&maxBuilds, "max-builds", 0, "run at most N builds at once; others wait in a queue (0: no limit)")
	cmd.Flags().StringArrayVar(&policy.Allow, "allow", nil, "entitlement clients may use with build --allow: network.host, security.insecure (default: none)")
	cmd.Flags().BoolVar(&insecureListen, "insecure-listen", false, "allow plain TCP without TLS, on a loopback address only")
	return cmd
}

// serveHooks let runBuild serve a remote client: its progress goes to the
// client, its secrets and SSH agents are asked of the client step by step,
// its result is kept.
type serveHooks struct {
	em             *server.Emitter
	secrets, agent []string
	res            *build.Result
	state          *build.State // the server's, shared by its builds
}

// sharedState is the server's state directory, nil outside a server.
func (h *serveHooks) sharedState() *build.State {
	if h == nil {
		return nil
	}
	return h.state
}

// buildRun is newBuildRun, but a served build's progress goes to the
// client, which renders it (and to the history), not to a printer here.
func (h *serveHooks) buildRun(w io.Writer, mode string) (*buildRun, error) {
	if h == nil {
		return newBuildRun(w, mode)
	}
	return runFor(h), nil
}

// wire gives the build the client's secrets and SSH agents, fetched when
// a step uses one.
func (h *serveHooks) wire(opt *build.Options) {
	if h == nil {
		return
	}
	opt.Secrets, opt.SSH = map[string]build.Secret{}, nil
	opt.SSHDial = map[string]func(context.Context) (net.Conn, error){}
	for _, id := range h.secrets {
		opt.Secrets[id] = build.Secret{Fetch: func(ctx context.Context) ([]byte, error) { return h.em.Secret(ctx, id) }}
	}
	for _, id := range h.agent {
		opt.SSHDial[id] = func(ctx context.Context) (net.Conn, error) { return h.em.DialSSH(ctx, id) }
	}
}

func (h *serveHooks) Event(e solver.Event) { h.em.Event(e) }
func (h *serveHooks) Close(error)          {}

func (h *serveHooks) setResult(res *build.Result) {
	if h != nil {
		h.res = res
	}
}

// serveBuildFunc runs a client's request through runBuild, as the same
// flags given on the command line would.
func serveBuildFunc(parent *cobra.Command, g *globalOptions, st *build.State) server.BuildFunc {
	return func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *server.Emitter) (*api.Result, error) {
		f, err := remoteflags.Flags(req, outDir)
		if err != nil {
			return nil, err
		}
		hooks := &serveHooks{em: em, secrets: req.SecretIDs, agent: req.SSHIDs, state: st}
		cmd := &cobra.Command{}
		cmd.SetContext(ctx)
		cmd.SetOut(io.Discard)
		if req.Check {
			cmd.SetOut(em.StdoutLines())
		}
		cmd.SetErr(em.Lines())
		local := *g
		local.remoteFlags = remoteFlags{serve: hooks}
		if err := runBuild(cmd, &local, f, contextDir); err != nil {
			return nil, err
		}
		if req.Check {
			return &api.Result{}, nil
		}
		res := &api.Result{Digest: hooks.res.Manifest.Digest.String(), Names: hooks.res.Names}
		if req.Metadata {
			b, err := os.ReadFile(f.MetadataFile)
			if err != nil {
				return nil, err
			}
			res.Metadata = b
		}
		return res, nil
	}
}
