package build

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver/ops"
)

// Secret is where the value of a secret for RUN --mount=type=secret comes
// from: a file or an environment variable of this process. The value is
// read when the build starts and is never written to a layer, the image,
// the cache or the progress output.
type Secret struct {
	// File is a host file holding the secret.
	File string
	// Env names an environment variable holding the secret.
	Env string
	// Value, when set, is the secret itself, held in memory only.
	Value []byte
	// Fetch, when set, asks for the secret when a step that uses it
	// starts (a `builder serve` server asks its client); the value is
	// held for that step only.
	Fetch func(context.Context) ([]byte, error)
}

// fetchSecret asks for the secrets that have a Fetch.
func fetchSecret(secrets map[string]Secret) func(context.Context, string) ([]byte, bool, error) {
	return func(ctx context.Context, id string) ([]byte, bool, error) {
		s, ok := secrets[id]
		if !ok || s.Fetch == nil {
			return nil, false, nil
		}
		v, err := s.Fetch(ctx)
		return v, err == nil, err
	}
}

// EntitlementInsecure allows RUN --security=insecure (Options.Allow).
const EntitlementInsecure = "security.insecure"

// session reads the build's secrets and collects its SSH agents.
func (opt Options) session() (*ops.Session, error) {
	sess := &ops.Session{Secrets: map[string][]byte{}, SSH: map[string]string{}, OnRunFailure: opt.OnRunFailure}
	sess.Download.Timeout, sess.Download.MaxSize = opt.HTTPTimeout, opt.HTTPMaxSize
	for id, s := range opt.Secrets {
		switch {
		case s.Value != nil:
			sess.Secrets[id] = s.Value
		case s.Fetch != nil:
			sess.FetchSecret = fetchSecret(opt.Secrets)
		case s.File != "" && s.Env != "":
			return nil, fmt.Errorf("secret %s: give a file or an environment variable, not both", id)
		case s.File != "":
			b, err := os.ReadFile(s.File)
			if err != nil {
				return nil, fmt.Errorf("secret %s: %w", id, err)
			}
			sess.Secrets[id] = b
		case s.Env != "":
			v, ok := os.LookupEnv(s.Env)
			if !ok {
				return nil, fmt.Errorf("secret %s: environment variable %s is not set", id, s.Env)
			}
			sess.Secrets[id] = []byte(v)
		default:
			return nil, fmt.Errorf("secret %s: no file or environment variable", id)
		}
	}
	for id, sock := range opt.SSH {
		if sock == "" {
			return nil, fmt.Errorf("ssh %s: no agent socket", id)
		}
		if _, err := os.Stat(sock); err != nil {
			return nil, fmt.Errorf("ssh %s: agent socket: %w", id, err)
		}
		sess.SSH[id] = sock
	}
	if len(opt.SSHDial) > 0 {
		sess.DialSSH = func(id string) (func(context.Context) (net.Conn, error), bool) {
			d, ok := opt.SSHDial[id]
			return d, ok
		}
	}
	if err := opt.Resources.Check(); err != nil {
		return nil, err
	}
	sess.Resources = opt.Resources
	return sess, nil
}

// checkEntitlements refuses steps that need an entitlement --allow did not
// grant, naming their Dockerfile line.
func checkEntitlements(root *llb.Vertex, allow []string) error {
	for _, a := range allow {
		if !slices.Contains(entitlements, a) {
			return fmt.Errorf("--allow %s: unknown entitlement (supported: %s)", a, strings.Join(entitlements, ", "))
		}
	}
	var errs []error
	llb.Walk([]*llb.Vertex{root}, func(v *llb.Vertex) error {
		op, ok := v.Op().(llb.ExecOp)
		if !ok {
			return nil
		}
		var msg string
		switch {
		case op.Security == llb.SecurityInsecure && !allowed(allow, EntitlementInsecure):
			msg = "RUN --security=insecure needs the entitlement: build with --allow " + EntitlementInsecure
		case op.Network == llb.NetworkHost && !allowed(allow, EntitlementNetworkHost):
			msg = "RUN --network=host needs the entitlement: build with --allow " + EntitlementNetworkHost
		default:
			return nil
		}
		if loc := v.Meta().Location.String(); loc != "" {
			msg = loc + ": " + msg
		}
		errs = append(errs, errors.New(msg))
		return nil
	})
	return errors.Join(errs...)
}

func allowed(allow []string, entitlement string) bool {
	return slices.Contains(allow, entitlement)
}
