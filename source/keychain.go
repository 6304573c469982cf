package source

import (
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// RegistryAuthEnv holds credentials for CI, where writing a docker config
// is awkward: "HOST=USER:PASSWORD" entries separated by commas or newlines.
// They take precedence over the docker config and its credential helpers.
const RegistryAuthEnv = "BUILDER_REGISTRY_AUTH"

// Keychain is the docker config (~/.docker/config.json or
// $DOCKER_CONFIG, with its credential helpers) behind the credentials of
// $BUILDER_REGISTRY_AUTH.
var Keychain authn.Keychain = authn.NewMultiKeychain(envKeychain{}, authn.DefaultKeychain)

type envKeychain struct{}

func (envKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	for _, entry := range strings.FieldsFunc(os.Getenv(RegistryAuthEnv), func(c rune) bool { return c == ',' || c == '\n' }) {
		host, cred, ok := strings.Cut(strings.TrimSpace(entry), "=")
		user, pass, ok2 := strings.Cut(cred, ":")
		if ok && ok2 && host == r.RegistryStr() {
			return &authn.Basic{Username: user, Password: pass}, nil
		}
	}
	return authn.Anonymous, nil
}
