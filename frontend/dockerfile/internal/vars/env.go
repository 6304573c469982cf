package vars

import (
	"strings"

	"github.com/builder-dev/builder/llb"
)

// proxyArgs are predefined build args: RUN sees them without an ARG line,
// and (unless declared with ARG) they stay out of the config, the history
// and the cache key, as in BuildKit.
var proxyArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true,
	"HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true,
	"NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// IsProxy reports whether name is a predefined proxy build arg.
func IsProxy(name string) bool { return proxyArgs[name] }

// ProxyEnv returns the proxy build args given on the command line that env
// does not set already.
func ProxyEnv(env []string, buildArgs map[string]string) []string {
	var out []string
	for _, name := range llb.SortedKeys(buildArgs) {
		if proxyArgs[name] && !Has(env, name) {
			out = append(out, name+"="+buildArgs[name])
		}
	}
	return out
}

// Has reports whether the KEY=VALUE list env sets name.
func Has(env []string, name string) bool {
	for _, e := range env {
		if n, _, _ := strings.Cut(e, "="); n == name {
			return true
		}
	}
	return false
}

// Set sets kv's name in env to kv, in place, or appends kv.
func Set(env []string, kv string) []string {
	name, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if n, _, _ := strings.Cut(e, "="); n == name {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}
