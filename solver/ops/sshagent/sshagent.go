// Package sshagent forwards an SSH agent into a RUN step (RUN
// --mount=type=ssh): a Unix socket in the step's scratch directory whose
// every connection is proxied to the agent's socket on the host, so the
// step never sees the host's socket path.
package sshagent

import (
	"context"
	"io"
	"net"
	"sync"
)

// Listen creates the Unix socket path, forwarding each connection to one
// dial makes (to the agent's socket, or to a `builder serve` client's
// agent over the API) once Serve runs.
func Listen(path string, dial func(context.Context) (net.Conn, error)) (*Proxy, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Proxy{ln: ln, dial: dial, ctx: ctx, cancel: cancel, conns: map[net.Conn]bool{}}, nil
}

// Proxy copies bytes between the connections made to its socket and new
// connections to the agent.
type Proxy struct {
	ln     net.Listener
	dial   func(context.Context) (net.Conn, error)
	ctx    context.Context // cancelled by Close: a dial in progress ends
	cancel context.CancelFunc
	mu     sync.Mutex
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

// Serve accepts connections until Close.
func (p *Proxy) Serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		// A remote agent may take a round trip to reach: the next
		// connection need not wait.
		go func() {
			a, err := p.dial(p.ctx)
			if err != nil {
				c.Close()
				return
			}
			if p.track(c, a) {
				go p.pipe(c, a)
				go p.pipe(a, c)
			}
		}()
	}
}

// track records the two ends of a connection for close and counts their
// pipes, or closes them when the proxy is closed.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	p.wg.Add(2)
	return true
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	// Half-close, so the other side sees EOF; the other pipe ends too.
	if hc, ok := dst.(interface{ CloseWrite() error }); ok {
		hc.CloseWrite()
	}
}

// Close stops accepting, closes every connection and waits for their
// copies to end.
func (p *Proxy) Close() {
	p.ln.Close()
	p.cancel()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
