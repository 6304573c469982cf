package buildopts

import (
	"fmt"
	"os"
	"strings"

	"github.com/builder-dev/builder/build"
)

// parseSecrets reads --secret values in buildx syntax:
// id=ID,src=FILE (also source=), id=ID,env=VAR, type=file|env, and id=ID
// alone for the environment variable ID.
func parseSecrets(values []string) (map[string]build.Secret, error) {
	out := map[string]build.Secret{}
	for _, v := range values {
		var id, typ, src, env string
		for _, field := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(field, "=")
			if !ok {
				return nil, fmt.Errorf("--secret %s: %q is not key=value", v, field)
			}
			switch strings.ToLower(k) {
			case "id":
				id = val
			case "type":
				typ = val
			case "src", "source":
				src = val
			case "env":
				env = val
			default:
				return nil, fmt.Errorf("--secret %s: unknown key %q (supported: id, type, src, env)", v, k)
			}
		}
		if id == "" {
			return nil, fmt.Errorf("--secret %s: missing id=", v)
		}
		var s build.Secret
		switch typ {
		case "", "file":
			switch {
			case src != "" && env != "":
				return nil, fmt.Errorf("--secret %s: give src= or env=, not both", v)
			case src != "":
				s.File = src
			case env != "":
				s.Env = env
			case typ == "file":
				s.File = id
			default:
				s.Env = id
			}
		case "env":
			if env == "" {
				env = src
			}
			if env == "" {
				env = id
			}
			s.Env = env
		default:
			return nil, fmt.Errorf("--secret %s: unknown type %q (supported: file, env)", v, typ)
		}
		out[id] = s
	}
	return out, nil
}

// parseSSH reads --ssh values: "default" (or any ID) alone for the agent
// at $SSH_AUTH_SOCK, ID=SOCKET for another agent.
func parseSSH(values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		id, sock, ok := strings.Cut(v, "=")
		if id == "" {
			return nil, fmt.Errorf("--ssh %s: missing id", v)
		}
		if !ok || sock == "" {
			sock = os.Getenv("SSH_AUTH_SOCK")
			if sock == "" {
				return nil, fmt.Errorf("--ssh %s: $SSH_AUTH_SOCK is not set; start an agent (ssh-agent) or give ID=SOCKET", v)
			}
		}
		if strings.Contains(sock, ",") {
			return nil, fmt.Errorf("--ssh %s: one agent socket per id (key files are not supported)", v)
		}
		fi, err := os.Stat(sock)
		if err != nil {
			return nil, fmt.Errorf("--ssh %s: %w", v, err)
		}
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("--ssh %s: %s is not a socket (key files are not supported; add the key to an ssh-agent)", v, sock)
		}
		out[id] = sock
	}
	return out, nil
}

// parseBuildContexts reads --build-context values: NAME=DIR,
// NAME=docker-image://REF or NAME=oci-layout://PATH.
func parseBuildContexts(values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, c := range values {
		k, v, ok := strings.Cut(c, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("--build-context %s: want NAME=DIR or NAME=docker-image://REF", c)
		}
		out[k] = v
	}
	return out, nil
}
