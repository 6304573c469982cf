package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/builder-dev/builder/cache/remote"
	"github.com/builder-dev/builder/server/api"
)

// Policy is what a server lets its clients ask for beyond a plain build.
type Policy struct {
	// Allow lists the entitlements (build --allow) clients may use; the
	// server's operator grants them with `serve --allow`.
	Allow []string
}

// Check refuses a request that would reach beyond the build on the
// server's host: an entitlement the operator did not grant (network.host,
// security.insecure), or a cache import or export or a build context
// naming a server directory.
func (p Policy) Check(req *api.BuildRequest) error {
	for name, v := range req.Contexts {
		if !strings.HasPrefix(v, "docker-image://") {
			return fmt.Errorf("--build-context %s=%s: only docker-image:// is named by value with --host (a directory is synced as a listing)", name, v)
		}
	}
	for _, a := range req.Allow {
		if !slices.Contains(p.Allow, a) {
			return fmt.Errorf("--allow %s: this server does not grant it (serve --allow %s)", a, a)
		}
	}
	for _, c := range []struct {
		flag   string
		specs  []string
		export bool
	}{{"--cache-to", req.CacheTo, true}, {"--cache-from", req.CacheFrom, false}} {
		for _, v := range c.specs {
			s, err := remote.ParseSpec(v, c.export)
			if err != nil {
				return err
			}
			if s.Dir != "" {
				return fmt.Errorf("%s %s: a directory of the server; use type=registry with --host", c.flag, v)
			}
		}
	}
	return nil
}
