package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/builder-dev/builder/cmd/builder/internal/buildopts"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/builder-dev/builder/build"
	"github.com/spf13/cobra"
)

// loader is --load: the image is written as a docker archive to a
// temporary file during the build, then loaded into Docker or Podman.
type loader struct {
	tmpDir string
	tar    string
	docker string // the Engine API address, or "" for podman
}

// prepareLoad picks where --load goes, before the build so that a machine
// with neither fails early, and adds the archive output to opt.
func prepareLoad(f *buildopts.Flags, opt *build.Options) (*loader, error) {
	if !f.Buildx.Load {
		return nil, nil
	}
	l := &loader{}
	host := os.Getenv("DOCKER_HOST")
	switch {
	case host != "":
		l.docker = host
	case fileExists("/var/run/docker.sock"):
		l.docker = "unix:///var/run/docker.sock"
	default:
		if _, err := exec.LookPath("podman"); err != nil {
			return nil, fmt.Errorf("--load: neither Docker (no $DOCKER_HOST, no /var/run/docker.sock) nor Podman (no podman on $PATH) is here to load the image into")
		}
	}
	dir, err := os.MkdirTemp("", "builder-load-")
	if err != nil {
		return nil, fmt.Errorf("--load: %w", err)
	}
	l.tmpDir, l.tar = dir, filepath.Join(dir, "image.tar")
	spec := "type=docker,dest=" + l.tar
	if len(f.Tags) > 0 {
		spec += `,"name=` + strings.Join(f.Tags, ",") + `"`
	}
	out, err := buildopts.ParseOutputs([]string{spec})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("--load: %w", err)
	}
	opt.Outputs = append(opt.Outputs, out...)
	return l, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// finish loads the archive the build wrote and says where it went.
func (l *loader) finish(cmd *cobra.Command) error {
	if l == nil {
		return nil
	}
	defer os.RemoveAll(l.tmpDir)
	if l.docker == "" {
		out, err := exec.CommandContext(cmd.Context(), "podman", "load", "-i", l.tar).CombinedOutput()
		if err != nil {
			return fmt.Errorf("--load: podman load: %v: %s", err, bytes.TrimSpace(out))
		}
		// podman's last line names the image ("Loaded image: NAME").
		lines := strings.Split(string(bytes.TrimSpace(out)), "\n")
		fmt.Fprintf(cmd.ErrOrStderr(), "loaded into Podman (podman load): %s\n", printable(lines[len(lines)-1]))
		return nil
	}
	if err := dockerLoad(cmd.Context(), l.docker, l.tar); err != nil {
		return fmt.Errorf("--load: Docker at %s: %w", l.docker, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "loaded into Docker (Engine API at %s)\n", l.docker)
	return nil
}

// dockerLoad posts the archive to the Engine API's image load endpoint at
// host (unix://PATH or tcp://HOST:PORT without TLS).
func dockerLoad(ctx context.Context, host, tar string) error {
	scheme, addr, ok := strings.Cut(host, "://")
	if !ok || (scheme != "unix" && scheme != "tcp") {
		return fmt.Errorf("DOCKER_HOST %q: want unix://PATH or tcp://HOST:PORT", host)
	}
	if scheme == "tcp" && os.Getenv("DOCKER_TLS_VERIFY") != "" {
		return fmt.Errorf("DOCKER_TLS_VERIFY is set: TLS to the Engine API is not supported")
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		network := map[string]string{"unix": "unix", "tcp": "tcp"}[scheme]
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	f, err := os.Open(tar)
	if err != nil {
		return err
	}
	defer f.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker/images/load?quiet=1", f)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("image load: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	// The answer is a JSON stream; a failed load says so in "error".
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			return nil
		}
		if m.Error != "" {
			return fmt.Errorf("image load: %s", m.Error)
		}
	}
}
