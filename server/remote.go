package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/progress"
	"github.com/builder-dev/builder/server/api"
)

// Remote is one build a client sends to the servers of --host: the
// request and what the client does with the answer.
type Remote struct {
	Hosts []string
	TLS   TLSFiles
	// ContextDir, Dockerfile (a path, "-" or empty) and Target route the
	// build to a server of the pool.
	ContextDir, Dockerfile, Target string
	Request                        *api.BuildRequest
	// Printer renders the build's progress; Quiet prints only the digest.
	Printer      progress.Printer
	Quiet        bool
	IIDFile      string
	MetadataFile string
}

// RunRemote runs r on the first reachable server of its pool, renders its
// progress, writes the client outputs, --iidfile and --metadata-file and
// reports the context sync (or, quiet, the digest on stdout). It closes
// r.Printer.
func RunRemote(ctx context.Context, r Remote, stdout, stderr io.Writer) error {
	outputs, err := clientOutputs(r.Request.Outputs)
	if err != nil {
		r.Printer.Close(err)
		return err
	}
	contextDir, key, err := routeKey(r.ContextDir, r.Dockerfile, r.Target)
	if err != nil {
		r.Printer.Close(err)
		return err
	}
	warn := func(w string) { fmt.Fprintln(stderr, "WARNING:", progress.Printable(w)) }
	res, err := BuildOnPool(ctx, r.Hosts, r.TLS, key, contextDir, r.Request, outputs, Handlers{
		Progress: func(p *api.Progress) { r.Printer.Event(DecodeProgress(p)) },
		Message:  func(s string) { fmt.Fprintln(stderr, s) },
		Queued: func(pos int) {
			if !r.Quiet {
				fmt.Fprintf(stderr, "waiting for the server: place %d in its queue\n", pos)
			}
		},
	}, warn)
	r.Printer.Close(err)
	if err != nil {
		return err
	}
	if r.IIDFile != "" {
		if err := os.WriteFile(r.IIDFile, []byte(res.Digest), 0o644); err != nil {
			return err
		}
	}
	if r.MetadataFile != "" {
		if err := os.WriteFile(r.MetadataFile, res.Metadata, 0o644); err != nil {
			return err
		}
	}
	if r.Quiet {
		fmt.Fprintln(stdout, res.Digest)
	} else {
		fmt.Fprintf(stderr, "context sync: uploaded %d files, %d bytes\n", res.SyncedFiles, res.SyncedBytes)
	}
	return nil
}

// routeKey returns the absolute context directory and the RouteKey of
// absolute paths, so a project routes the same from any working directory.
func routeKey(contextDir, dockerfile, target string) (string, string, error) {
	contextDir, err := filepath.Abs(contextDir)
	if err != nil {
		return "", "", err
	}
	if dockerfile != "" && dockerfile != "-" {
		if dockerfile, err = filepath.Abs(dockerfile); err != nil {
			return "", "", err
		}
	}
	return contextDir, RouteKey(contextDir, dockerfile, target), nil
}

// clientOutputs says where the outputs that come back are written, by
// index into the request's -o values.
func clientOutputs(specs []string) (map[int]Output, error) {
	outputs := map[int]Output{}
	for i, o := range specs {
		client, dir, err := ClientOutput(o)
		if err != nil {
			return nil, err
		}
		if client {
			p, _ := output.Parse(o)
			outputs[i] = Output{Dest: p.Dest, Dir: dir}
		}
	}
	return outputs, nil
}

// ReadSecret reads a --secret value (from a file or an environment
// variable) on the client, to send it.
func ReadSecret(file, env string) ([]byte, error) {
	switch {
	case file != "":
		return os.ReadFile(file)
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", env)
		}
		return []byte(v), nil
	}
	return nil, errors.New("no file or environment variable")
}
