// Package remoteflags carries `builder build`'s flags to a `builder serve`
// server: into a request on the client, and back into flags on the server.
package remoteflags

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cmd/builder/internal/buildopts"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/server"
	"github.com/builder-dev/builder/server/api"
	"github.com/builder-dev/builder/server/session"
)

// Request turns `builder build`'s flags and options into a request, what
// the client offers it (the secrets and SSH agents) and the directories of
// --build-context to sync, by name.
func Request(f *buildopts.Flags, df []byte, opt build.Options) (*api.BuildRequest, session.Local, map[string]string, error) {
	local := session.Local{Secrets: map[string]func() ([]byte, error){}, SSH: opt.SSH}
	bx := f.Buildx
	for _, bad := range []struct {
		set       bool
		flag, why string
	}{
		{f.OnError != "fail", "--on-error", "the debug shell and the kept layer would be on the server's host"},
		{f.Resources != (buildopts.Resources{}), "--memory, --cpus, --cpu-shares, --pids-limit", "the server's cgroup limits are its operator's (not set per client yet)"},
		{bx.Load, "--load", "it loads into a Docker or Podman of the server's host; use -o type=docker,dest=FILE and load FILE on the client"},
	} {
		if bad.set {
			return nil, local, nil, fmt.Errorf("%s is not supported with --host: %s", bad.flag, bad.why)
		}
	}
	for id, s := range opt.Secrets {
		read, err := server.SecretReader(s.File, s.Env)
		if err != nil {
			return nil, local, nil, fmt.Errorf("secret %s: %w", id, err)
		}
		local.Secrets[id] = read
	}
	req := &api.BuildRequest{
		Dockerfile: df, DockerfileName: opt.DockerfileName, Tags: f.Tags, BuildArgs: opt.BuildArgs,
		Target: f.Target, NoCache: f.NoCache, NoCacheFilter: f.NoCacheFilter, Push: f.Push, Outputs: f.Outputs,
		Allow: f.Allow, Network: f.Network, CacheTo: f.CacheTo, CacheFrom: f.CacheFrom, Parallelism: f.Parallelism,
		SquashAbove: f.SquashAbove, StepTimeout: f.StepTimeout, HTTPTimeout: f.HTTPTimeout, HTTPMaxSize: f.HTTPMaxSize,
		GCKeep: f.GCKeep, Check: f.Check, Pull: bx.Pull, Labels: bx.Labels, Annotations: bx.Annotations, AddHosts: bx.AddHosts,
		ShmSize: bx.ShmSize, Ulimits: bx.Ulimits, Platforms: bx.Platforms, Metadata: f.MetadataFile != "", SecretIDs: llb.SortedKeys(opt.Secrets), SSHIDs: llb.SortedKeys(opt.SSH), Quiet: f.Progress == "quiet",
	}
	named, err := contexts(req, opt.Contexts)
	return req, local, named, err
}

// contexts splits --build-context values: images are sent as they
// are, directories are returned to be synced (the server never reads a
// path the client names), a client's OCI layout is refused.
func contexts(req *api.BuildRequest, contexts map[string]string) (map[string]string, error) {
	dirs := map[string]string{}
	for name, v := range contexts {
		switch {
		case strings.HasPrefix(v, "docker-image://"):
			if req.Contexts == nil {
				req.Contexts = map[string]string{}
			}
			req.Contexts[name] = v
		case strings.Contains(v, "://"):
			return nil, fmt.Errorf("--build-context %s=%s is not supported with --host: only directories (synced to the server) and docker-image:// (push an OCI layout to a registry first)", name, v)
		default:
			fi, err := os.Stat(v)
			if err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("--build-context %s=%s: not a directory", name, v)
			}
			dirs[name] = v
		}
	}
	return dirs, nil
}

// Flags turns a request back into the flags of `builder build`, with the
// Dockerfile and the outputs that go back to the client in files under
// outDir's directory.
func Flags(req *api.BuildRequest, outDir string) (*buildopts.Flags, error) {
	f := &buildopts.Flags{
		Tags: req.Tags, Target: req.Target, NoCache: req.NoCache, NoCacheFilter: req.NoCacheFilter,
		Push: req.Push, Progress: "plain", Allow: req.Allow, Network: req.Network, CacheTo: req.CacheTo, CacheFrom: req.CacheFrom,
		Parallelism: req.Parallelism, SquashAbove: req.SquashAbove, StepTimeout: req.StepTimeout, HTTPTimeout: req.HTTPTimeout,
		HTTPMaxSize: req.HTTPMaxSize, GCKeep: req.GCKeep, OnError: "fail", Buildx: buildopts.Buildx{Call: "build", Pull: req.Pull, Labels: req.Labels, Annotations: req.Annotations,
			AddHosts: req.AddHosts, ShmSize: req.ShmSize, Ulimits: req.Ulimits, Platforms: req.Platforms},
	}
	if req.Quiet {
		f.Progress = "quiet"
	}
	if f.Network == "" {
		f.Network = "default"
	}
	f.Check = req.Check
	// The Dockerfile keeps its name, which errors and checks cite.
	var err error
	if f.File, err = writeDockerfile(filepath.Join(filepath.Dir(outDir), "dockerfile"), req); err != nil {
		return nil, err
	}
	f.Contexts = append(f.Contexts, buildopts.Pairs(req.Contexts)...)
	f.BuildArgs = append(f.BuildArgs, buildopts.Pairs(req.BuildArgs)...)
	for i, o := range req.Outputs {
		client, _, err := server.ClientOutput(o)
		if err != nil {
			return nil, err
		}
		if client {
			o = server.SetDest(o, server.OutputPath(outDir, i))
		}
		f.Outputs = append(f.Outputs, o)
	}
	if req.Metadata {
		f.MetadataFile = filepath.Join(outDir, "metadata.json")
	}
	return f, nil
}

// writeDockerfile writes a request's Dockerfile into dir under its name.
func writeDockerfile(dir string, req *api.BuildRequest) (string, error) {
	name := filepath.Base(req.DockerfileName)
	if name == "." || name == "/" || name == "" {
		name = "Dockerfile"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, req.Dockerfile, 0o600)
}
