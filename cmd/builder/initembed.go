//go:build embedinit

package main

import _ "embed"

// initBinary is cmd/builder-init, built by `make build` before builder.
//
//go:embed builder-init.bin
var initBinary []byte

// initBinarySum is initBinary's sha256 (hex), set by the linker
// (-X main.initBinarySum=...) so that nothing reads the embedded bytes
// until a step runs; empty, it is computed.
var initBinarySum string
