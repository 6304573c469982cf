// Package source brings base images into the build: references resolved
// to a manifest digest, layers pulled into the content store and unpacked
// into snapshots, with retries and bounds on what a registry sends; and
// ADD's downloads. The build context's files are selected and checksummed
// by source/localctx, git repositories fetched by source/gitrepo.
package source
