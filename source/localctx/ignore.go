package localctx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/patternmatcher/ignorefile"
)

// ReadDockerignore reads the ignore file for a build: DOCKERFILE.dockerignore
// beside the Dockerfile if there is one, else the context's .dockerignore.
func ReadDockerignore(dir, dockerfile string) ([]string, error) {
	name := filepath.Join(dir, ".dockerignore")
	if dockerfile != "" {
		if _, err := os.Stat(dockerfile + ".dockerignore"); err == nil {
			name = dockerfile + ".dockerignore"
		}
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading .dockerignore: %w", err)
	}
	return patterns, nil
}
