//go:build embedinit

package main

import _ "embed"

// initBinary is cmd/builder-init, built by `make build` before builder.
//
//go:embed builder-init.bin
var initBinary []byte
