package llb

// HTTPOp is a file downloaded from an http:// or https:// URL: a source
// vertex with no inputs whose result is a file tree holding the one file
// /<Filename>, mode 0600, its mtime the response's Last-Modified (else the
// Unix epoch). ADD copies it from there; it is never unpacked.
type HTTPOp struct {
	URL string `json:"url"`
	// Checksum, when set ("sha256:..."), is the digest the content must
	// have. It is the identity of the result: no download is needed to
	// find it in the cache.
	Checksum string `json:"checksum,omitempty"`
	// Filename names the file in the result's tree.
	Filename string `json:"filename"`
}

// GitOp is a checkout of a git repository at a ref: a source vertex with no
// inputs whose result is the repository's work tree (with .git only when
// KeepGitDir is set).
type GitOp struct {
	// Remote is the repository URL as git takes it (https://, git://,
	// ssh:// or user@host:path).
	Remote string `json:"remote"`
	// Ref is a branch, a tag or a commit; "" is the remote's HEAD.
	Ref string `json:"ref,omitempty"`
	// Subdir selects a directory of the repository as the result's root.
	Subdir     string `json:"subdir,omitempty"`
	KeepGitDir bool   `json:"keepGitDir,omitempty"`
	// Checksum, when set, is the commit (or a prefix of its hash) the ref
	// must resolve to.
	Checksum string `json:"checksum,omitempty"`
}

func (HTTPOp) Kind() string { return "http" }
func (GitOp) Kind() string  { return "git" }
