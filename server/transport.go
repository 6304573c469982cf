package server

import (
	"net"

	"github.com/builder-dev/builder/server/transport"
)

// TLSFiles name the PEM files of mutual TLS (see package transport).
type TLSFiles = transport.TLSFiles

// Listen opens addr for a server (see transport.Listen).
func Listen(addr string, tlsFiles TLSFiles, insecure bool) (net.Listener, error) {
	return transport.Listen(addr, tlsFiles, insecure)
}
