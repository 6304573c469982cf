// Package source brings inputs into the build: base images from registries
// (resolved to a manifest digest, layers pulled into the content store and
// unpacked into snapshots) and files selected from the local build context.
package source
