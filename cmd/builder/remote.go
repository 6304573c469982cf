package main

import (
	"errors"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cmd/builder/internal/buildopts"
	"github.com/builder-dev/builder/cmd/builder/internal/remoteflags"
	"github.com/builder-dev/builder/progress"
	"github.com/builder-dev/builder/server"
	"github.com/spf13/cobra"
)

// runRemoteBuild runs the build runBuild has parsed on the servers of
// --host, rendering its progress with the printer of --progress.
func runRemoteBuild(cmd *cobra.Command, g *globalOptions, f *buildopts.Flags, contextDir string, df []byte, opt build.Options) error {
	req, local, named, err := remoteflags.Request(f, df, opt)
	if err != nil {
		return err
	}
	printer, err := progress.New(cmd.ErrOrStderr(), f.Progress)
	if err != nil {
		return err
	}
	err = server.RunRemote(cmd.Context(), server.Remote{
		Hosts: server.SplitHosts(g.host), TLS: g.tls, ContextDir: contextDir, Dockerfile: f.File, Target: f.Target, DockerfilePath: opt.DockerfilePath,
		Contexts: named, Request: req, Local: local, Printer: printer, Quiet: f.Progress == "quiet", IIDFile: f.IIDFile, MetadataFile: f.MetadataFile,
	}, cmd.OutOrStdout(), cmd.ErrOrStderr())
	if f.Explain {
		explain(cmd.ErrOrStderr(), printer)
	}
	// The server's exit code (a failed --check's 1) is the client's.
	var ec interface{ ExitStatus() int }
	if errors.As(err, &ec) && ec.ExitStatus() > 0 {
		return exitCodeError{ec.ExitStatus()}
	}
	return err
}
