package build

import (
	"fmt"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/llb"
)

// EntitlementNetworkHost allows the host's network: --network=host and
// RUN --network=host (Options.Allow), as BuildKit's network.host does.
const EntitlementNetworkHost = "network.host"

// entitlements are the names --allow accepts.
var entitlements = []string{EntitlementInsecure, EntitlementNetworkHost}

// buildNetwork checks opt.Network and returns it as the frontend's default
// RUN network.
func buildNetwork(opt Options) (string, error) {
	switch opt.Network {
	case "", "default":
		return "", nil
	case "none":
		return llb.NetworkNone, nil
	case "host":
		if !allowed(opt.Allow, EntitlementNetworkHost) {
			return "", fmt.Errorf("--network=host needs the entitlement: build with --allow %s", EntitlementNetworkHost)
		}
		return llb.NetworkHost, nil
	}
	return "", fmt.Errorf("--network=%s: want default, none or host", opt.Network)
}

// warnNetwork warns, once, when steps that asked for the default network
// will get the host's instead, because no user-mode network helper is
// installed.
func warnNetwork(root *llb.Vertex, warn func(string)) {
	if warn == nil || root == nil {
		return
	}
	msg := executor.NetworkWarning()
	if msg == "" {
		return
	}
	found := false
	llb.Walk([]*llb.Vertex{root}, func(v *llb.Vertex) error {
		if op, ok := v.Op().(llb.ExecOp); ok && op.Network == "" {
			found = true
		}
		return nil
	})
	if found {
		warn(msg)
	}
}
