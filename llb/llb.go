// Package llb is the build graph: an immutable DAG of operations, each named
// by the sha256 of a deterministic encoding of the op and its inputs' names.
//
// A Vertex's digest identifies what it does, not what it produces: a cache key
// also needs the content of what the op reads (files of the build context, the
// resolved base image), which the solver adds.
package llb

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Op is one operation of the graph. Ops are plain values encoded as JSON;
// field order in the structs fixes the encoding.
type Op interface {
	// Kind names the op type in the encoding and in progress output.
	Kind() string
}

// ImageOp is a base image pinned by its manifest digest.
type ImageOp struct {
	Ref      string        `json:"ref"`    // as written, for messages
	Digest   digest.Digest `json:"digest"` // resolved manifest digest; the identity
	Platform string        `json:"platform"`
}

// LocalOp is a directory on the host, the build context. Its content is not
// part of the identity: ops that read it add checksums of what they read.
type LocalOp struct {
	Name string `json:"name"`
	// Dir is the absolute path; it is not encoded, so moving a checkout
	// keeps the cache.
	Dir string `json:"-"`
	// Excludes are .dockerignore patterns; they change what COPY selects.
	Excludes []string `json:"excludes,omitempty"`
}

// ExecOp runs a process on its first input's file tree.
type ExecOp struct {
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	Cwd      string   `json:"cwd"`
	User     string   `json:"user,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
	Network  string   `json:"network,omitempty"`
	// Files are made available read-only at their paths during the run
	// (a heredoc script at /dev/pipes/NAME); they are not in the layer.
	Files []InlineFile `json:"files,omitempty"`
	// ProxyEnv holds the proxy build args (HTTP_PROXY, ...): set for the
	// process but, as in BuildKit, not part of the identity or cache key.
	ProxyEnv []string `json:"-"`
	// Mounts are the RUN --mount mounts, in order (see ExecMount).
	Mounts []ExecMount `json:"mounts,omitempty"`
	// Security is "" (the sandbox) or "insecure" (RUN --security=insecure).
	Security string `json:"security,omitempty"`
	// ExtraHosts are added to the sandbox's /etc/hosts, ShmSize (bytes, 0
	// for the default) sizes its /dev/shm and Ulimits are its resource
	// limits: the build's --add-host, --shm-size and --ulimit. They are
	// part of the identity, as in BuildKit.
	ExtraHosts []HostIP `json:"extraHosts,omitempty"`
	ShmSize    int64    `json:"shmSize,omitempty"`
	Ulimits    []Ulimit `json:"ulimits,omitempty"`
	// Platform ("os/arch[/variant]") is what the process runs as, under
	// emulation when not the host's: the same command gives another
	// result, so it is part of the identity. File ops have none, so a
	// COPY from a build-platform stage stays shared between platforms.
	Platform string `json:"platform,omitempty"`
}

// HostIP is one /etc/hosts entry.
type HostIP struct {
	Host string `json:"host"`
	IP   string `json:"ip"`
}

// Ulimit is one resource limit: Name as docker's --ulimit names it
// (nofile, nproc, core, ...), -1 for unlimited.
type Ulimit struct {
	Name string `json:"name"`
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
}

// InlineFile is a file whose content is part of the op (a heredoc).
type InlineFile struct {
	Path string `json:"path"`
	Data string `json:"data"`
	Mode uint32 `json:"mode"`
}

// CopyOp copies Sources, selected from its second input (a LocalOp or another
// file tree), into Dest on its first input.
type CopyOp struct {
	Sources []string `json:"sources"`
	Dest    string   `json:"dest"`
	// Chown is "uid:gid" or names, resolved in the destination tree.
	Chown string `json:"chown,omitempty"`
	// Chmod is an octal or symbolic (u+x,go-w) mode applied to every
	// copied file and directory.
	Chmod string `json:"chmod,omitempty"`
	// Add marks ADD: local tar archives are unpacked.
	Add bool `json:"add,omitempty"`
	// Inline files (COPY heredocs) are written instead of Sources; their
	// Path is the file name.
	Inline []InlineFile `json:"inline,omitempty"`
	// Excludes are patterns (relative to the source) left out of the copy.
	Excludes []string `json:"excludes,omitempty"`
	// Parents keeps each source's directory path under Dest.
	Parents bool `json:"parents,omitempty"`
	// Link marks COPY --link; the file tree produced is the same.
	Link bool `json:"link,omitempty"`
}

// MkdirOp creates a directory and its parents, as WORKDIR does.
type MkdirOp struct {
	Path  string `json:"path"`
	Mode  uint32 `json:"mode"`
	Chown string `json:"chown,omitempty"`
}

func (ImageOp) Kind() string { return "image" }
func (LocalOp) Kind() string { return "local" }
func (ExecOp) Kind() string  { return "exec" }
func (CopyOp) Kind() string  { return "copy" }
func (MkdirOp) Kind() string { return "mkdir" }

// Location is a range of lines in a source file, for messages.
type Location struct {
	File      string `json:"file"`
	StartLine int    `json:"startLine"`
	EndLine   int    `json:"endLine"`
}

func (l Location) String() string {
	if l.File == "" {
		return ""
	}
	if l.EndLine > l.StartLine {
		return fmt.Sprintf("%s:%d-%d", l.File, l.StartLine, l.EndLine)
	}
	return fmt.Sprintf("%s:%d", l.File, l.StartLine)
}

// Meta describes a vertex for people. It is not part of the digest, so two
// stages with the same steps share the work.
type Meta struct {
	Name     string   `json:"name"`
	Location Location `json:"location"`
	// IgnoreCache forces a run even when a cache record exists.
	IgnoreCache bool `json:"ignoreCache,omitempty"`
	// StepID names the step across builds (stage and position, not
	// content), so a cache miss can be explained against the last build.
	StepID string `json:"stepID,omitempty"`
}

// Vertex is an op with its inputs. A nil input is an empty file tree
// (scratch). Vertices are immutable once made.
type Vertex struct {
	op     Op
	inputs []*Vertex
	meta   Meta
	digest digest.Digest
}

// NewVertex makes a vertex and computes its digest.
func NewVertex(op Op, inputs []*Vertex, meta Meta) *Vertex {
	v := &Vertex{op: op, inputs: inputs, meta: meta}
	v.digest = digest.FromBytes(v.encode())
	return v
}

func (v *Vertex) encode() []byte {
	in := make([]digest.Digest, len(v.inputs))
	for i, x := range v.inputs {
		if x != nil {
			in[i] = x.digest
		}
	}
	b, err := json.Marshal(struct {
		Kind   string          `json:"kind"`
		Op     Op              `json:"op"`
		Inputs []digest.Digest `json:"inputs"`
	}{v.op.Kind(), v.op, in})
	if err != nil {
		// Ops are plain structs of strings and numbers; this cannot fail.
		panic(fmt.Sprintf("encoding %s op: %v", v.op.Kind(), err))
	}
	return b
}

func (v *Vertex) Op() Op                { return v.op }
func (v *Vertex) Inputs() []*Vertex     { return v.inputs }
func (v *Vertex) Meta() Meta            { return v.meta }
func (v *Vertex) Digest() digest.Digest { return v.digest }

// Walk visits every vertex reachable from roots once, inputs before the
// vertices that use them.
func Walk(roots []*Vertex, fn func(*Vertex) error) error {
	seen := map[digest.Digest]bool{}
	var visit func(*Vertex) error
	visit = func(v *Vertex) error {
		if v == nil || seen[v.digest] {
			return nil
		}
		seen[v.digest] = true
		for _, in := range v.inputs {
			if err := visit(in); err != nil {
				return err
			}
		}
		return fn(v)
	}
	for _, r := range roots {
		if err := visit(r); err != nil {
			return err
		}
	}
	return nil
}

// Print writes the graph reachable from roots, one vertex a line, inputs first.
func Print(w io.Writer, roots []*Vertex) error {
	return Walk(roots, func(v *Vertex) error {
		in := make([]string, 0, len(v.inputs))
		for _, x := range v.inputs {
			if x == nil {
				in = append(in, "scratch")
			} else {
				in = append(in, x.digest.Encoded()[:12])
			}
		}
		op, _ := json.Marshal(v.op)
		_, err := fmt.Fprintf(w, "%s %-5s [%s] %s %s\n", v.digest.Encoded()[:12], v.op.Kind(), strings.Join(in, " "), v.meta.Name, op)
		return err
	})
}

// Digest of a sequence of strings, length-prefixed so ("ab","c") and
// ("a","bc") differ. Used for cache keys built from several parts.
func DigestStrings(parts ...string) digest.Digest {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return digest.NewDigest(digest.SHA256, h)
}

// SortedKeys returns m's keys in order, for deterministic encodings.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
