// Package sshagent forwards an SSH agent into a RUN step (RUN
// --mount=type=ssh): a Unix socket in the step's scratch directory whose
// every connection is proxied to the agent's socket on the host, so the
// step never sees the host's socket path.
package sshagent

import (
	"io"
	"net"
	"sync"
)

// Listen creates the Unix socket path, forwarding to the agent socket
// agent once Serve runs.
func Listen(path, agent string) (*Proxy, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	return &Proxy{ln: ln, agent: agent, conns: map[net.Conn]bool{}}, nil
}

// Proxy copies bytes between the connections made to its socket and new
// connections to the agent's socket.
type Proxy struct {
	ln    net.Listener
	agent string
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// Serve accepts connections until Close.
func (p *Proxy) Serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		a, err := net.Dial("unix", p.agent)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, a) {
			return
		}
		go p.pipe(c, a)
		go p.pipe(a, c)
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
	if uc, ok := dst.(*net.UnixConn); ok {
		uc.CloseWrite()
	}
}

// Close stops accepting, closes every connection and waits for their
// copies to end.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
