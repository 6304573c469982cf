//go:build !embedinit

package main

// initBinary is empty in a plain `go build`: each RUN step then
// re-executes builder itself as the sandbox init (slower to start, the same
// sandbox). `make build` embeds cmd/builder-init (build tag embedinit).
var initBinary []byte

var initBinarySum string
