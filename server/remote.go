package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/progress"
	"github.com/builder-dev/builder/server/api"
	"github.com/builder-dev/builder/server/session"
	"github.com/builder-dev/builder/source/localctx"
)

// Remote is one build a client sends to the servers of --host: the
// request and what the client does with the answer.
type Remote struct {
	Hosts []string
	TLS   TLSFiles
	// ContextDir, Dockerfile (a path, "-" or empty) and Target route the
	// build to a server of the pool.
	ContextDir, Dockerfile, Target string
	// DockerfilePath, when set, is where DOCKERFILE.dockerignore is
	// looked for (build.Options.DockerfilePath).
	DockerfilePath string
	// Contexts are the directories of --build-context, by name: each is
	// synced as the main context is (without an ignore file, as locally).
	Contexts map[string]string
	// SumsDir holds the client's file digest cache; empty is
	// $XDG_CACHE_HOME/builder/client.
	SumsDir string
	Request *api.BuildRequest
	// Local holds the secrets and SSH agents the server may ask for.
	Local session.Local
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
	trees, closeSums, err := contextTrees(contextDir, r.DockerfilePath, r.Contexts, r.SumsDir)
	if err != nil {
		r.Printer.Close(err)
		return err
	}
	defer closeSums()
	warn := func(w string) { fmt.Fprintln(stderr, "WARNING:", progress.Printable(w)) }
	res, err := BuildOnPool(ctx, r.Hosts, r.TLS, key, trees, r.Request, outputs, Handlers{
		Progress: func(p *api.Progress) { r.Printer.Event(DecodeProgress(p)) },
		Message:  func(s string) { fmt.Fprintln(stderr, s) },
		Stdout:   func(s string) { fmt.Fprintln(stdout, s) },
		Local:    r.Local,
		Queued: func(pos int) {
			if !r.Quiet {
				fmt.Fprintf(stderr, "waiting for the server: place %d in its queue\n", pos)
			}
		},
	}, warn)
	r.Printer.Close(err)
	if err != nil || r.Request.Check {
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

// contextTrees are the contexts as a local build sees them: the main one
// with what .dockerignore keeps (the rest is neither hashed nor sent), the
// named directories whole, with file digests remembered between builds so
// that a no-op rebuild reads no file.
func contextTrees(contextDir, dockerfilePath string, named map[string]string, sumsDir string) (Trees, func(), error) {
	excludes, err := localctx.ReadDockerignore(contextDir, dockerfilePath)
	if err != nil {
		return Trees{}, nil, err
	}
	db := openSums(sumsDir)
	closeSums := func() {
		if db != nil {
			db.Close()
		}
	}
	tree := func(dir string, excludes []string) (*localctx.Tree, error) {
		t, err := localctx.NewTree(dir, excludes)
		if err == nil && db != nil {
			t.Sums = db.FileSums()
		}
		return t, err
	}
	trees := Trees{Named: map[string]*localctx.Tree{}}
	if trees.Main, err = tree(contextDir, excludes); err != nil {
		closeSums()
		return Trees{}, nil, err
	}
	for name, dir := range named {
		if trees.Named[name], err = tree(dir, nil); err != nil {
			closeSums()
			return Trees{}, nil, fmt.Errorf("--build-context %s=%s: %w", name, dir, err)
		}
	}
	return trees, closeSums, nil
}

// openSums opens the client's file digest cache (the one a state
// directory has, on its own). Without one, every file is read: slower,
// not wrong, so a client without a writable cache directory still builds.
func openSums(dir string) *cache.DB {
	if dir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return nil
		}
		dir = filepath.Join(d, "builder", "client")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil
	}
	db, err := cache.OpenUnleased(filepath.Join(dir, "filesums.db"), nil)
	if err != nil {
		return nil
	}
	return db
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

// SecretReader checks that a --secret's file or environment variable is
// there and returns what reads it, on the client, when the server asks.
func SecretReader(file, env string) (func() ([]byte, error), error) {
	switch {
	case file != "" && env != "":
		return nil, errors.New("give a file or an environment variable, not both")
	case file != "":
		if _, err := os.Stat(file); err != nil {
			return nil, err
		}
		return func() ([]byte, error) { return os.ReadFile(file) }, nil
	case env != "":
		if _, ok := os.LookupEnv(env); !ok {
			return nil, fmt.Errorf("environment variable %s is not set", env)
		}
		return func() ([]byte, error) { return []byte(os.Getenv(env)), nil }, nil
	}
	return nil, errors.New("no file or environment variable")
}
