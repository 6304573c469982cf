// Package imageload loads a docker save archive into the machine's Docker
// (through the Engine API) or Podman (podman load): `build --load`.
package imageload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/builder-dev/builder/internal/userns"
)

// Target is where Load puts images: the Docker Engine API at Docker, or
// Podman when Docker is "".
type Target struct {
	Docker string
}

// Detect picks the target as buildx would look for it: $DOCKER_HOST, else
// /var/run/docker.sock, else podman on $PATH; neither is an error naming both.
func Detect() (Target, error) {
	if host := os.Getenv("DOCKER_HOST"); host != "" {
		return Target{Docker: host}, nil
	}
	if _, err := os.Stat("/var/run/docker.sock"); err == nil {
		return Target{Docker: "unix:///var/run/docker.sock"}, nil
	}
	if _, err := exec.LookPath("podman"); err != nil {
		return Target{}, fmt.Errorf("--load: neither Docker (no $DOCKER_HOST, no /var/run/docker.sock) nor Podman (no podman on $PATH) is here to load the image into")
	}
	return Target{}, nil
}

// Load loads the archive at tar and says where it went.
func (t Target) Load(ctx context.Context, tar string) (string, error) {
	if t.Docker == "" {
		out, err := Podman(ctx, "load", "-i", tar).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("--load: podman load: %v: %s", err, bytes.TrimSpace(out))
		}
		// podman's last line names the image ("Loaded image: NAME").
		lines := strings.Split(string(bytes.TrimSpace(out)), "\n")
		return "loaded into Podman (podman load): " + lines[len(lines)-1], nil
	}
	if err := DockerLoad(ctx, t.Docker, tar); err != nil {
		return "", fmt.Errorf("--load: Docker at %s: %w", t.Docker, err)
	}
	return "loaded into Docker (Engine API at " + t.Docker + ")", nil
}

// Podman is a podman command. A rootless builder runs in its own user
// namespace as root: told so the way `podman unshare` tells it, podman uses
// the user's rootless storage instead of /var/lib/containers (the id maps
// are podman's own: root is the user, then the subordinate ids).
func Podman(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "podman", args...)
	if uid, gid, ok := userns.HostIDs(); ok {
		cmd.Env = append(os.Environ(), "_CONTAINERS_USERNS_CONFIGURED=done",
			"_CONTAINERS_ROOTLESS_UID="+strconv.Itoa(uid), "_CONTAINERS_ROOTLESS_GID="+strconv.Itoa(gid))
	}
	return cmd
}

// DockerLoad posts the archive to the Engine API's image load endpoint at
// host (unix://PATH or tcp://HOST:PORT without TLS).
func DockerLoad(ctx context.Context, host, tar string) error {
	scheme, addr, ok := strings.Cut(host, "://")
	if !ok || (scheme != "unix" && scheme != "tcp") {
		return fmt.Errorf("DOCKER_HOST %q: want unix://PATH or tcp://HOST:PORT", host)
	}
	if scheme == "tcp" && os.Getenv("DOCKER_TLS_VERIFY") != "" {
		return fmt.Errorf("DOCKER_TLS_VERIFY is set: TLS to the Engine API is not supported")
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, scheme, addr)
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
