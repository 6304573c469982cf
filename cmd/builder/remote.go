package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/server"
	"github.com/builder-dev/builder/server/api"
	"github.com/spf13/cobra"
)

// remoteInputs are what runBuild has read on the client for a remote build.
type remoteInputs struct {
	contextDir     string
	dockerfile     []byte
	dockerfileName string
	args           map[string]string
	secrets        map[string]build.Secret
	printer        progressPrinter
}

func runRemoteBuild(cmd *cobra.Command, g *globalOptions, f *buildFlags, in remoteInputs) error {
	req, outputs, err := remoteRequest(f, in)
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	contextDir, err := filepath.Abs(in.contextDir)
	if err != nil {
		return err
	}
	dockerfile := f.file
	if dockerfile != "" && dockerfile != "-" {
		if dockerfile, err = filepath.Abs(dockerfile); err != nil {
			return err
		}
	}
	key := server.RouteKey(contextDir, dockerfile, f.target)
	warn := func(w string) { fmt.Fprintln(stderr, "WARNING:", printable(w)) }
	res, err := server.BuildOnPool(cmd.Context(), server.SplitHosts(g.host), g.tls, key, contextDir, req, outputs, server.Handlers{
		Progress: func(p *api.Progress) { in.printer.Event(server.DecodeProgress(p)) },
		Message:  func(s string) { fmt.Fprintln(stderr, s) },
		Queued: func(pos int) {
			if f.progress != "quiet" {
				fmt.Fprintf(stderr, "waiting for the server: place %d in its queue\n", pos)
			}
		},
	}, warn)
	in.printer.Close(err)
	if f.explain {
		if ex, ok := in.printer.(interface{ Explain(io.Writer) }); ok {
			ex.Explain(stderr)
		}
	}
	if err != nil {
		return err
	}
	if f.iidfile != "" {
		if err := os.WriteFile(f.iidfile, []byte(res.Digest), 0o644); err != nil {
			return err
		}
	}
	if f.metadataFile != "" {
		if err := os.WriteFile(f.metadataFile, res.Metadata, 0o644); err != nil {
			return err
		}
	}
	if f.progress == "quiet" {
		fmt.Fprintln(cmd.OutOrStdout(), res.Digest)
	} else {
		fmt.Fprintf(stderr, "context sync: uploaded %d files, %d bytes\n", res.SyncedFiles, res.SyncedBytes)
	}
	return nil
}

// remoteRequest turns runBuild's flags and inputs into a request, and
// says where the outputs that come back are written.
func remoteRequest(f *buildFlags, in remoteInputs) (*api.BuildRequest, map[int]server.Output, error) {
	for _, bad := range []struct {
		set  bool
		flag string
	}{
		{len(f.contexts) > 0, "--build-context"}, {len(f.ssh) > 0, "--ssh"}, {f.check, "--check"},
		{f.onError != "fail", "--on-error"}, {f.resources != (resourceFlags{}), "resource limits"},
	} {
		if bad.set {
			return nil, nil, fmt.Errorf("%s is not supported with --host yet", bad.flag)
		}
	}
	secrets := map[string][]byte{}
	for id, s := range in.secrets {
		v, err := readSecret(s)
		if err != nil {
			return nil, nil, fmt.Errorf("secret %s: %w", id, err)
		}
		secrets[id] = v
	}
	req := &api.BuildRequest{
		Dockerfile: in.dockerfile, DockerfileName: in.dockerfileName, Tags: f.tags, BuildArgs: in.args,
		Target: f.target, NoCache: f.noCache, NoCacheFilter: f.noCacheFilter, Push: f.push, Outputs: f.outputs,
		Allow: f.allow, Network: f.network, CacheTo: f.cacheTo, CacheFrom: f.cacheFrom, Parallelism: f.parallelism,
		SquashAbove: f.squashAbove, StepTimeout: f.stepTimeout, HTTPTimeout: f.httpTimeout, HTTPMaxSize: f.httpMaxSize,
		GCKeep: f.gcKeep, Metadata: f.metadataFile != "", Secrets: secrets, Quiet: f.progress == "quiet",
	}
	outputs := map[int]server.Output{}
	for i, o := range f.outputs {
		client, dir, err := server.ClientOutput(o)
		if err != nil {
			return nil, nil, err
		}
		if client {
			p, _ := build.ParseOutput(o)
			outputs[i] = server.Output{Dest: p.Dest, Dir: dir}
		}
	}
	return req, outputs, nil
}

// readSecret reads a --secret value on the client, to send it.
func readSecret(s build.Secret) ([]byte, error) {
	switch {
	case s.File != "":
		return os.ReadFile(s.File)
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", s.Env)
		}
		return []byte(v), nil
	}
	return nil, errors.New("no file or environment variable")
}
