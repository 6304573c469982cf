package main

import (
	"fmt"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cmd/builder/internal/buildopts"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/progress"
	"github.com/builder-dev/builder/server"
	"github.com/builder-dev/builder/server/api"
	"github.com/builder-dev/builder/server/session"
	"github.com/spf13/cobra"
)

// runRemoteBuild runs the build runBuild has parsed on the servers of
// --host, rendering its progress with the printer of --progress.
func runRemoteBuild(cmd *cobra.Command, g *globalOptions, f *buildopts.Flags, contextDir string, df []byte, opt build.Options) error {
	req, local, err := remoteRequest(f, df, opt)
	if err != nil {
		return err
	}
	printer, err := progress.New(cmd.ErrOrStderr(), f.Progress)
	if err != nil {
		return err
	}
	err = server.RunRemote(cmd.Context(), server.Remote{
		Hosts: server.SplitHosts(g.host), TLS: g.tls, ContextDir: contextDir, Dockerfile: f.File, Target: f.Target, DockerfilePath: opt.DockerfilePath,
		Request: req, Local: local, Printer: printer, Quiet: f.Progress == "quiet", IIDFile: f.IIDFile, MetadataFile: f.MetadataFile,
	}, cmd.OutOrStdout(), cmd.ErrOrStderr())
	if f.Explain {
		explain(cmd.ErrOrStderr(), printer)
	}
	return err
}

// remoteRequest turns runBuild's flags and options into a request and
// what the client offers it: the secrets and SSH agents.
func remoteRequest(f *buildopts.Flags, df []byte, opt build.Options) (*api.BuildRequest, session.Local, error) {
	local := session.Local{Secrets: map[string]func() ([]byte, error){}, SSH: opt.SSH}
	bx := f.Buildx
	for _, bad := range []struct {
		set  bool
		flag string
	}{
		{len(f.Contexts) > 0, "--build-context"}, {f.Check, "--check"},
		{f.OnError != "fail", "--on-error"}, {f.Resources != (buildopts.Resources{}), "resource limits"},
		{bx.Load, "--load"}, {bx.Pull, "--pull"}, {len(bx.Labels) > 0, "--label"}, {len(bx.Annotations) > 0, "--annotation"},
		{len(bx.AddHosts) > 0, "--add-host"}, {bx.ShmSize != "", "--shm-size"}, {len(bx.Ulimits) > 0, "--ulimit"},
		{bx.CgroupParent != "", "--cgroup-parent"}, {len(bx.Platforms) > 0, "--platform"},
	} {
		if bad.set {
			return nil, local, fmt.Errorf("%s is not supported with --host yet", bad.flag)
		}
	}
	for id, s := range opt.Secrets {
		read, err := server.SecretReader(s.File, s.Env)
		if err != nil {
			return nil, local, fmt.Errorf("secret %s: %w", id, err)
		}
		local.Secrets[id] = read
	}
	req := &api.BuildRequest{
		Dockerfile: df, DockerfileName: opt.DockerfileName, Tags: f.Tags, BuildArgs: opt.BuildArgs,
		Target: f.Target, NoCache: f.NoCache, NoCacheFilter: f.NoCacheFilter, Push: f.Push, Outputs: f.Outputs,
		Allow: f.Allow, Network: f.Network, CacheTo: f.CacheTo, CacheFrom: f.CacheFrom, Parallelism: f.Parallelism,
		SquashAbove: f.SquashAbove, StepTimeout: f.StepTimeout, HTTPTimeout: f.HTTPTimeout, HTTPMaxSize: f.HTTPMaxSize,
		GCKeep: f.GCKeep, Metadata: f.MetadataFile != "", SecretIDs: llb.SortedKeys(opt.Secrets), SSHIDs: llb.SortedKeys(opt.SSH), Quiet: f.Progress == "quiet",
	}
	return req, local, nil
}
