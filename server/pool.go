package server

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/builder-dev/builder/server/api"
)

// ErrUnreachable marks a failure to connect to a server, after which a
// pool tries the next one.
var ErrUnreachable = errors.New("server unreachable")

// RouteKey is what a pool routes a build by: the same project (context,
// Dockerfile, target) returns to the same server and its warm cache.
func RouteKey(contextDir, dockerfile, target string) string {
	return contextDir + "\x00" + dockerfile + "\x00" + target
}

// Order returns hosts in the order a build with key tries them: rendezvous
// (highest random weight) hashing, a consistent hash in which removing one
// host moves only the keys that were on it, each to the next in its order.
func Order(hosts []string, key string) []string {
	type scored struct {
		host  string
		score uint64
	}
	s := make([]scored, len(hosts))
	for i, h := range hosts {
		sum := sha256.Sum256([]byte(h + "\x00" + key))
		s[i] = scored{h, binary.BigEndian.Uint64(sum[:8])}
	}
	slices.SortStableFunc(s, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return strings.Compare(a.host, b.host)
	})
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x.host
	}
	return out
}

// SplitHosts reads --host or BUILDER_HOST: one address or several
// separated by commas.
func SplitHosts(v string) []string {
	var out []string
	for _, h := range strings.Split(v, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// BuildOnPool runs the build on the first of hosts, in key's order, that
// can be reached; warn is told of each that could not.
func BuildOnPool(ctx context.Context, hosts []string, tlsFiles TLSFiles, key string, trees Trees, req *api.BuildRequest, outputs map[int]Output, h Handlers, warn func(string)) (*api.Result, error) {
	var errs []error
	for _, host := range Order(hosts, key) {
		c, err := Dial(host, tlsFiles)
		if err != nil {
			return nil, err
		}
		res, err := c.Build(ctx, trees, key, req, outputs, h)
		if err == nil || !errors.Is(err, ErrUnreachable) || ctx.Err() != nil {
			return res, err
		}
		errs = append(errs, err)
		if warn != nil && len(hosts) > 1 {
			warn(fmt.Sprintf("%s: %v; trying the next server", host, err))
		}
	}
	return nil, errors.Join(errs...)
}

// unreachable reports whether err is a failure to connect.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
