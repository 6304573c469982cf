package imagestore

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
)

// Normalise gives a name without a tag or digest the tag "latest", the name
// the store keeps it under.
func Normalise(n string) string {
	if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") || strings.Contains(n, "@") {
		return n
	}
	return n + ":latest"
}

// pathComponent is a component of a repository path in the distribution
// reference grammar: lowercase alphanumerics joined by ".", "_", "__" or
// dashes. go-containerregistry's weak validation lets "..", "." and empty
// components through, so names are checked against this too.
// Compiled on first use, not at every command's start-up.
var pathComponent = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
})

// CheckName refuses a name (-t) that is not a valid image reference, so
// that it is refused before anything is built.
func CheckName(n string) error {
	ref, err := name.ParseReference(n, name.WeakValidation)
	if err != nil {
		return fmt.Errorf("invalid image name %q: %w", n, err)
	}
	repo := ref.Context().RepositoryStr()
	for _, c := range strings.Split(repo, "/") {
		if !pathComponent().MatchString(c) {
			return fmt.Errorf("invalid image name %q: path component %q must be lowercase letters and digits, joined by '.', '_', '__' or '-'", n, c)
		}
	}
	return nil
}
