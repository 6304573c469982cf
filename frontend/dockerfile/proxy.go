package dockerfile

import "github.com/builder-dev/builder/llb"

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

// proxyEnv returns the proxy build args given on the command line that env
// does not set already.
func proxyEnv(env []string, buildArgs map[string]string) []string {
	var out []string
	for _, name := range llb.SortedKeys(buildArgs) {
		if proxyArgs[name] && !hasEnv(env, name) {
			out = append(out, name+"="+buildArgs[name])
		}
	}
	return out
}
