// Package passwd resolves the identities of an image's /etc/passwd and
// /etc/group: a Dockerfile USER value as a RUN step runs with it
// (ResolveUser, in the sandbox init, and LookupUser) and a COPY --chown
// owner the way BuildKit's file operations read it (LookupOwner). It
// imports nothing but the standard library and securejoin, so the sandbox
// init stays small.
package passwd
