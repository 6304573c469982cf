package llb

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// Chmod is a parsed COPY --chmod value: octal ("0755") or symbolic, as
// chmod(1) writes it ("u+x,go-w", "a=rX", "+x"). A symbolic mode changes
// each file's own mode.
type Chmod struct {
	octal   *fs.FileMode
	clauses []chmodClause
}

type chmodClause struct {
	who   fs.FileMode // bits of u, g, o affected
	op    byte
	perm  string // letters from rwxXst, or one of u g o (copy)
	setID bool
}

const (
	whoU = 0o4700
	whoG = 0o2070
	whoO = 0o1007
)

// ParseChmod parses a --chmod value.
func ParseChmod(s string) (*Chmod, error) {
	if n, err := strconv.ParseUint(s, 8, 32); err == nil {
		if n > 0o7777 {
			return nil, fmt.Errorf("invalid chmod %q: an octal mode must be between 0 and 07777", s)
		}
		m := fs.FileMode(n)
		return &Chmod{octal: &m}, nil
	}
	c := &Chmod{}
	for _, clause := range strings.Split(s, ",") {
		i := 0
		var who fs.FileMode
		for ; i < len(clause) && strings.IndexByte("ugoa", clause[i]) >= 0; i++ {
			switch clause[i] {
			case 'u':
				who |= whoU
			case 'g':
				who |= whoG
			case 'o':
				who |= whoO
			case 'a':
				who |= whoU | whoG | whoO
			}
		}
		if who == 0 {
			who = whoU | whoG | whoO
		}
		if i >= len(clause) || strings.IndexByte("+-=", clause[i]) < 0 {
			return nil, fmt.Errorf("invalid chmod %q: %q needs an operator (+, - or =)", s, clause)
		}
		op := clause[i]
		perm := clause[i+1:]
		if perm != "u" && perm != "g" && perm != "o" && strings.Trim(perm, "rwxXst") != "" {
			return nil, fmt.Errorf("invalid chmod %q: unknown permission in %q", s, clause)
		}
		c.clauses = append(c.clauses, chmodClause{who: who, op: op, perm: perm})
	}
	return c, nil
}

// Apply returns the mode a file of mode m (permission bits, setuid,
// setgid and sticky, plus fs.ModeDir for directories) gets.
// Octal returns the mode of an octal --chmod; ok is false for a symbolic one.
func (c *Chmod) Octal() (m fs.FileMode, ok bool) {
	if c.octal == nil {
		return 0, false
	}
	return *c.octal, true
}

func (c *Chmod) Apply(m fs.FileMode) fs.FileMode {
	if c.octal != nil {
		return toFS(uint32(*c.octal))
	}
	bits := fromFS(m)
	for _, cl := range c.clauses {
		var p uint32
		switch cl.perm {
		case "u":
			p = (bits >> 6 & 7) * 0o111
		case "g":
			p = (bits >> 3 & 7) * 0o111
		case "o":
			p = (bits & 7) * 0o111
		default:
			for _, ch := range cl.perm {
				switch ch {
				case 'r':
					p |= 0o444
				case 'w':
					p |= 0o222
				case 'x':
					p |= 0o111
				case 'X':
					if m.IsDir() || bits&0o111 != 0 {
						p |= 0o111
					}
				case 's':
					p |= 0o6000
				case 't':
					p |= 0o1000
				}
			}
		}
		mask := uint32(cl.who)
		p &= mask
		switch cl.op {
		case '+':
			bits |= p
		case '-':
			bits &^= p
		case '=':
			bits = bits&^mask | p
		}
	}
	return toFS(bits)
}

// fromFS turns an fs.FileMode's permission and special bits into the
// Unix mode bits chmod(2) takes.
func fromFS(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

func toFS(b uint32) fs.FileMode {
	m := fs.FileMode(b & 0o777)
	if b&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if b&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if b&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
