// Package api defines the HTTP/JSON API of `builder serve`, version 1:
// the request and response bodies and the newline-delimited JSON events a
// build streams back. docs/serve-api.md describes the protocol.
package api

import "time"

// Version is the path prefix of every endpoint of this API.
const Version = "/v1"

// File is one entry of a build context: a client lists them all, with the
// digest of each regular file's content, and uploads only the contents the
// server asks for.
type File struct {
	Path    string `json:"path"` // slash-separated, relative; "." is the root
	Mode    uint32 `json:"mode"` // Go fs.FileMode bits
	Link    string `json:"link,omitempty"`
	Digest  string `json:"digest,omitempty"` // "sha256:…" for regular files
	Size    int64  `json:"size,omitempty"`
	MtimeNs int64  `json:"mtimeNs,omitempty"`
}

// ContextRequest is the body of POST /v1/contexts.
type ContextRequest struct {
	Files []File `json:"files"`
	// Project, when set, names the project (the client's route key): the
	// server keeps its context directory between builds and updates only
	// what changed.
	Project string `json:"project,omitempty"`
}

// ContextResponse names the context and lists the digests the server's
// content store lacks; PUT /v1/blobs/{digest} uploads each.
type ContextResponse struct {
	ID      string   `json:"id"`
	Missing []string `json:"missing"`
}

// BuildRequest is the body of POST /v1/build: the build flags of
// `builder build`, resolved on the client where they name the client's
// environment (NAME-only --build-arg, --secret values).
type BuildRequest struct {
	Context        string            `json:"context"` // ContextResponse.ID
	Dockerfile     []byte            `json:"dockerfile"`
	DockerfileName string            `json:"dockerfileName,omitempty"`
	Tags           []string          `json:"tags,omitempty"`
	BuildArgs      map[string]string `json:"buildArgs,omitempty"`
	Target         string            `json:"target,omitempty"`
	NoCache        bool              `json:"noCache,omitempty"`
	NoCacheFilter  []string          `json:"noCacheFilter,omitempty"`
	Push           bool              `json:"push,omitempty"`
	// Outputs are -o values; those of type local, tar, oci and docker are
	// written on the server and streamed back as Output events.
	Outputs     []string      `json:"outputs,omitempty"`
	Explain     bool          `json:"explain,omitempty"`
	Allow       []string      `json:"allow,omitempty"`
	Network     string        `json:"network,omitempty"`
	CacheTo     []string      `json:"cacheTo,omitempty"`
	CacheFrom   []string      `json:"cacheFrom,omitempty"`
	Parallelism int           `json:"parallelism,omitempty"`
	SquashAbove int           `json:"squashAbove,omitempty"`
	StepTimeout time.Duration `json:"stepTimeout,omitempty"`
	HTTPTimeout time.Duration `json:"httpTimeout,omitempty"`
	HTTPMaxSize string        `json:"httpMaxSize,omitempty"`
	GCKeep      string        `json:"gcKeepStorage,omitempty"`
	Metadata    bool          `json:"metadata,omitempty"` // send the --metadata-file JSON back
	Quiet       bool          `json:"quiet,omitempty"`    // --progress=quiet: no summary messages
	// SecretIDs are the ids of --secret and SSHIDs those of --ssh: the
	// server asks the client for one (a Request event) when a step that
	// uses it starts, and holds it for that step only.
	SecretIDs []string `json:"secretIds,omitempty"`
	// Contexts are --build-context values that name no client path
	// (docker-image://REF); LocalContexts name, for each directory
	// --build-context, the listing (ContextResponse.ID) it was synced as.
	Contexts      map[string]string `json:"contexts,omitempty"`
	LocalContexts map[string]string `json:"localContexts,omitempty"`
	// Pull, Labels, Annotations, AddHosts, ShmSize, Ulimits and Platforms
	// are the buildx flags of the same names.
	Pull        bool     `json:"pull,omitempty"`
	Labels      []string `json:"labels,omitempty"`
	Annotations []string `json:"annotations,omitempty"`
	AddHosts    []string `json:"addHosts,omitempty"`
	ShmSize     string   `json:"shmSize,omitempty"`
	Ulimits     []string `json:"ulimits,omitempty"`
	Platforms   []string `json:"platforms,omitempty"`
	// Check runs the build checks only (--check): their report comes back
	// as stdout messages and a failed check as exit code 1.
	Check  bool     `json:"check,omitempty"`
	SSHIDs []string `json:"sshIds,omitempty"`
}

// Request types: what a build asks its client for.
const (
	// RequestSecret asks for a secret's value: the client answers with
	// an Answer.
	RequestSecret = "secret"
	// RequestSSH asks for a connection to an SSH agent: the client
	// answers with an upgrade (Upgrade: SSHUpgrade) to a raw stream to
	// its agent, or with an Answer holding an error.
	RequestSSH = "ssh"
)

// SSHUpgrade is the Upgrade protocol of an answer to a RequestSSH.
const SSHUpgrade = "builder-ssh-agent"

// Request is a build's question to its client, answered by POST
// /v1/requests/{token}.
type Request struct {
	Token string `json:"token"`
	Type  string `json:"type"` // RequestSecret or RequestSSH
	ID    string `json:"id"`   // the secret's or SSH agent's id
}

// Answer is the body of POST /v1/requests/{token}: a secret's value, or
// why the client has none.
type Answer struct {
	Value []byte `json:"value,omitempty"`
	Error string `json:"error,omitempty"`
}

// Event kinds of a build's stream.
const (
	KindQueued   = "queued"   // Position
	KindProgress = "progress" // Progress
	KindMessage  = "message"  // Text: a line for the client's stderr (warnings, checks, explain)
	KindOutput   = "output"   // Output, Data: a chunk of a tar of the output
	KindResult   = "result"   // Result or Error: the last event
	KindRequest  = "request"  // Request: the build asks the client for a secret or an SSH agent
)

// Event is one line of a build's response stream.
type Event struct {
	Kind     string    `json:"kind"`
	Position int       `json:"position,omitempty"`
	Progress *Progress `json:"progress,omitempty"`
	Text     string    `json:"text,omitempty"`
	Stdout   bool      `json:"stdout,omitempty"` // Text is for the client's stdout, not stderr
	Output   int       `json:"output,omitempty"` // index into BuildRequest.Outputs
	Data     []byte    `json:"data,omitempty"`
	Result   *Result   `json:"result,omitempty"`
	Error    *Error    `json:"error,omitempty"`
	Request  *Request  `json:"request,omitempty"`
}

// Progress is a solver event (solver.Event) on the wire.
type Progress struct {
	Kind       string        `json:"kind"`
	Vertex     string        `json:"vertex"`
	Step       int           `json:"step"`
	Name       string        `json:"name"`
	Time       time.Time     `json:"time"`
	Duration   time.Duration `json:"duration,omitempty"`
	Data       []byte        `json:"data,omitempty"`
	Error      string        `json:"error,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	CPU        time.Duration `json:"cpu,omitempty"`
	PeakMemory uint64        `json:"peakMemory,omitempty"`
	ReadBytes  uint64        `json:"readBytes,omitempty"`
	WriteBytes uint64        `json:"writeBytes,omitempty"`
	HasUsage   bool          `json:"hasUsage,omitempty"`
}

// Result is a successful build's outcome.
type Result struct {
	Digest   string   `json:"digest"` // manifest digest (--iidfile)
	Names    []string `json:"names,omitempty"`
	Metadata []byte   `json:"metadata,omitempty"` // --metadata-file content
	// SyncedFiles and SyncedBytes count the context contents uploaded for
	// this build's context.
	SyncedFiles int   `json:"syncedFiles"`
	SyncedBytes int64 `json:"syncedBytes"`
}

// Error is a failed build's error. Instruction and Output, when set, are
// the failed step's, for the summary a local build prints.
type Error struct {
	Message     string   `json:"message"`
	Instruction string   `json:"instruction,omitempty"`
	Output      []string `json:"output,omitempty"`
	ExitCode    int      `json:"exitCode,omitempty"`
}
