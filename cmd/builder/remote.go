package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cmd/builder/internal/buildopts"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/progress"
	"github.com/builder-dev/builder/server"
	"github.com/builder-dev/builder/server/api"
	"github.com/spf13/cobra"
)

// runRemoteBuild runs the build runBuild has parsed on the servers of
// --host, rendering its progress with the printer of --progress.
func runRemoteBuild(cmd *cobra.Command, g *globalOptions, f *buildopts.Flags, contextDir string, df []byte, opt build.Options) error {
	req, outputs, err := remoteRequest(f, df, opt)
	if err != nil {
		return err
	}
	printer, err := progress.New(cmd.ErrOrStderr(), f.Progress)
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	if contextDir, err = filepath.Abs(contextDir); err != nil {
		return err
	}
	dockerfile := f.File
	if dockerfile != "" && dockerfile != "-" {
		if dockerfile, err = filepath.Abs(dockerfile); err != nil {
			return err
		}
	}
	key := server.RouteKey(contextDir, dockerfile, f.Target)
	warn := func(w string) { fmt.Fprintln(stderr, "WARNING:", printable(w)) }
	res, err := server.BuildOnPool(cmd.Context(), server.SplitHosts(g.host), g.tls, key, contextDir, req, outputs, server.Handlers{
		Progress: func(p *api.Progress) { printer.Event(server.DecodeProgress(p)) },
		Message:  func(s string) { fmt.Fprintln(stderr, s) },
		Queued: func(pos int) {
			if f.Progress != "quiet" {
				fmt.Fprintf(stderr, "waiting for the server: place %d in its queue\n", pos)
			}
		},
	}, warn)
	printer.Close(err)
	if f.Explain {
		explain(stderr, printer)
	}
	if err != nil {
		return err
	}
	if f.IIDFile != "" {
		if err := os.WriteFile(f.IIDFile, []byte(res.Digest), 0o644); err != nil {
			return err
		}
	}
	if f.MetadataFile != "" {
		if err := os.WriteFile(f.MetadataFile, res.Metadata, 0o644); err != nil {
			return err
		}
	}
	if f.Progress == "quiet" {
		fmt.Fprintln(cmd.OutOrStdout(), res.Digest)
	} else {
		fmt.Fprintf(stderr, "context sync: uploaded %d files, %d bytes\n", res.SyncedFiles, res.SyncedBytes)
	}
	return nil
}

// remoteRequest turns runBuild's flags and options into a request, and
// says where the outputs that come back are written.
func remoteRequest(f *buildopts.Flags, df []byte, opt build.Options) (*api.BuildRequest, map[int]server.Output, error) {
	bx := f.Buildx
	for _, bad := range []struct {
		set  bool
		flag string
	}{
		{len(f.Contexts) > 0, "--build-context"}, {len(f.SSH) > 0, "--ssh"}, {f.Check, "--check"},
		{f.OnError != "fail", "--on-error"}, {f.Resources != (buildopts.Resources{}), "resource limits"},
		{bx.Load, "--load"}, {bx.Pull, "--pull"}, {len(bx.Labels) > 0, "--label"}, {len(bx.Annotations) > 0, "--annotation"},
		{len(bx.AddHosts) > 0, "--add-host"}, {bx.ShmSize != "", "--shm-size"}, {len(bx.Ulimits) > 0, "--ulimit"},
		{bx.CgroupParent != "", "--cgroup-parent"}, {len(bx.Platforms) > 0, "--platform"},
	} {
		if bad.set {
			return nil, nil, fmt.Errorf("%s is not supported with --host yet", bad.flag)
		}
	}
	secrets := map[string][]byte{}
	for id, s := range opt.Secrets {
		v, err := readSecret(s)
		if err != nil {
			return nil, nil, fmt.Errorf("secret %s: %w", id, err)
		}
		secrets[id] = v
	}
	req := &api.BuildRequest{
		Dockerfile: df, DockerfileName: opt.DockerfileName, Tags: f.Tags, BuildArgs: opt.BuildArgs,
		Target: f.Target, NoCache: f.NoCache, NoCacheFilter: f.NoCacheFilter, Push: f.Push, Outputs: f.Outputs,
		Allow: f.Allow, Network: f.Network, CacheTo: f.CacheTo, CacheFrom: f.CacheFrom, Parallelism: f.Parallelism,
		SquashAbove: f.SquashAbove, StepTimeout: f.StepTimeout, HTTPTimeout: f.HTTPTimeout, HTTPMaxSize: f.HTTPMaxSize,
		GCKeep: f.GCKeep, Metadata: f.MetadataFile != "", Secrets: secrets, Quiet: f.Progress == "quiet",
	}
	outputs := map[int]server.Output{}
	for i, o := range f.Outputs {
		client, dir, err := server.ClientOutput(o)
		if err != nil {
			return nil, nil, err
		}
		if client {
			p, _ := output.Parse(o)
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
