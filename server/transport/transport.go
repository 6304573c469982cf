// Package transport is how builder serve and its clients meet: a UNIX
// socket of Docker's mode, or TCP with mutual TLS.
package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/builder-dev/builder/source/loopback"
)

// TLSFiles name the PEM files of mutual TLS: the CA that signs the other
// side's certificates, and this side's certificate and key.
type TLSFiles struct{ CA, Cert, Key string }

// Set says whether any TLS file was given.
func (t TLSFiles) Set() bool { return t.CA != "" || t.Cert != "" || t.Key != "" }

// Config returns a TLS config for a server (which then requires and
// verifies client certificates) or a client.
func (t TLSFiles) Config(server bool) (*tls.Config, error) {
	ca, err := os.ReadFile(t.CA)
	if err != nil {
		return nil, fmt.Errorf("TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("TLS CA %s: no PEM certificate", t.CA)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.Cert != "" || server {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if server {
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	} else {
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Listen opens addr: unix:///path (a socket of mode 0660, as Docker's) or
// tcp://host:port, which needs tlsFiles unless insecure is set and host is
// a loopback address.
func Listen(addr string, tlsFiles TLSFiles, insecure bool) (net.Listener, error) {
	scheme, rest, ok := strings.Cut(addr, "://")
	if !ok {
		return nil, fmt.Errorf("--addr %s: want unix:///PATH or tcp://HOST:PORT", addr)
	}
	switch scheme {
	case "unix":
		if err := os.Remove(rest); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("--addr %s: %w", addr, err)
		}
		return listenUnix(rest)
	case "tcp":
		if !tlsFiles.Set() {
			if !insecure || !loopback.Is(rest) {
				return nil, fmt.Errorf("--addr %s: TCP needs --tlscacert, --tlscert and --tlskey (plain TCP only with --insecure-listen on a loopback address)", addr)
			}
			return net.Listen("tcp", rest)
		}
		cfg, err := tlsFiles.Config(true)
		if err != nil {
			return nil, err
		}
		return tls.Listen("tcp", rest, cfg)
	}
	return nil, fmt.Errorf("--addr %s: unknown scheme %q (unix or tcp)", addr, scheme)
}

// listenUnix makes the socket under a temporary name, sets its mode and
// renames it into place, so a client never finds it with the umask's mode.
func listenUnix(path string) (net.Listener, error) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o660); err != nil {
		l.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		os.Remove(tmp)
		return nil, err
	}
	return unlinkOnClose{Listener: l, path: path}, nil
}

// unlinkOnClose removes the socket's final name when the listener closes
// (the listener itself knows only the temporary one).
type unlinkOnClose struct {
	net.Listener
	path string
}

func (l unlinkOnClose) Close() error {
	err := l.Listener.Close()
	os.Remove(l.path)
	return err
}
