// Package imagestore is the local image store of a state directory: images
// by name (tags), load and save as archives, push, local-first resolution
// of FROM names, and images of oci-layout:// build contexts.
//
// Images come in (a build's result, a `docker save` or OCI layout archive,
// an OCI layout directory) and go out (archives, registries). The store
// keeps names in the metadata database and blobs in the content store; it
// knows nothing of Dockerfiles.
package imagestore
