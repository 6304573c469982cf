package executor

import "github.com/builder-dev/builder/executor/passwd"

// LookupOwner resolves a COPY --chown or WORKDIR owner against the file
// tree at root the way BuildKit's file operations do; see
// passwd.LookupOwner.
func LookupOwner(root, spec string) (uid, gid int, err error) {
	return passwd.LookupOwner(root, spec)
}
