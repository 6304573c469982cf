package ops

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/solver/ops/filecopy"
	"github.com/builder-dev/builder/source"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// resolved carries what a source op's CacheKey found out (a download, a
// commit) to its Run, so that the result is what the key describes even if
// the remote changes between the two. Worker.Op makes a new op value each
// time, so it lives here, keyed by worker and vertex; a later CacheKey of
// the same vertex replaces the entry.
var resolved sync.Map // resolvedKey -> any

type resolvedKey struct {
	w *Worker
	v digest.Digest
}

func remember(w *Worker, v *llb.Vertex, val any) { resolved.Store(resolvedKey{w, v.Digest()}, val) }

func recall[T any](w *Worker, v *llb.Vertex) (T, bool) {
	val, ok := resolved.Load(resolvedKey{w, v.Digest()})
	t, isT := val.(T)
	return t, ok && isT
}

// httpOp downloads a file for ADD <url>. The content is kept in the content
// store by digest; the result is a one-layer snapshot holding the file,
// which the following copy op copies like any other file tree.
//
// Cache key: with a checksum, the checksum and the file name (no request is
// made when the result is cached, and a mirror with the same file hits);
// without, the file is downloaded first and the key is its digest, name and
// Last-Modified time.
type httpOp struct {
	w  *Worker
	op llb.HTTPOp
	v  *llb.Vertex
	// dl holds the build's timeouts and size bound.
	dl source.DownloadOptions
}

var _ solver.LoggingKeyer = (*httpOp)(nil)

// download is what an HTTP op fetched.
type download struct {
	blob         digest.Digest // in the content store
	lastModified time.Time
}

func (o *httpOp) checkFilename() error {
	f := o.op.Filename
	if f == "" || f == "." || f == ".." || strings.ContainsRune(f, '/') {
		return fmt.Errorf("invalid file name %q", f)
	}
	return nil
}

func (o *httpOp) CacheKey(ctx context.Context, in []digest.Digest) (digest.Digest, error) {
	return o.CacheKeyLog(ctx, in, nil)
}

// CacheKeyLog is CacheKey with progress lines for the download.
func (o *httpOp) CacheKeyLog(ctx context.Context, _ []digest.Digest, log io.Writer) (digest.Digest, error) {
	if err := o.checkFilename(); err != nil {
		return "", err
	}
	if o.op.Checksum != "" {
		want, err := digest.Parse(o.op.Checksum)
		if err != nil {
			return "", fmt.Errorf("--checksum=%s: %w", o.op.Checksum, err)
		}
		return llb.DigestStrings(o.op.Kind(), want.String(), o.op.Filename), nil
	}
	dl, err := o.download(ctx, log)
	if err != nil {
		return "", err
	}
	remember(o.w, o.v, dl)
	var lm string
	if !dl.lastModified.IsZero() {
		lm = dl.lastModified.Format(time.RFC3339)
	}
	return llb.DigestStrings(o.op.Kind(), dl.blob.String(), o.op.Filename, lm), nil
}

// download fetches the URL into the content store, checking the checksum
// if there is one.
func (o *httpOp) download(ctx context.Context, log io.Writer) (download, error) {
	if o.w.Registries == nil || o.w.Registries.Content == nil {
		return download{}, fmt.Errorf("no content store to download into")
	}
	var want digest.Digest
	if o.op.Checksum != "" {
		var err error
		if want, err = digest.Parse(o.op.Checksum); err != nil {
			return download{}, fmt.Errorf("--checksum=%s: %w", o.op.Checksum, err)
		}
	}
	cw, err := o.w.Registries.Content.Writer(ctx)
	if err != nil {
		return download{}, err
	}
	defer cw.Close()
	var dst io.Writer = cw
	var h digest.Digester
	if want != "" {
		h = want.Algorithm().Digester()
		dst = io.MultiWriter(cw, h.Hash())
	}
	opt := o.dl
	opt.Progress = log
	got, err := source.Download(ctx, o.op.URL, dst, opt)
	if err != nil {
		return download{}, err
	}
	if h != nil && h.Digest() != want {
		return download{}, fmt.Errorf("digest mismatch: --checksum says %s, the downloaded content is %s", want, h.Digest())
	}
	blob, _, err := cw.Commit("", got.Size)
	if err != nil {
		return download{}, fmt.Errorf("storing the download: %w", err)
	}
	return download{blob: blob, lastModified: got.LastModified}, nil
}

func (o *httpOp) Run(ctx context.Context, _ []solver.Result, log io.Writer) (solver.Result, error) {
	if err := o.checkFilename(); err != nil {
		return solver.Result{}, err
	}
	dl, ok := recall[download](o.w, o.v)
	if !ok || !o.w.Registries.Content.Exists(dl.blob) {
		var err error
		if dl, err = o.download(ctx, log); err != nil {
			return solver.Result{}, err
		}
	}
	id, _, err := o.w.newLayer(ctx, "")
	if err != nil {
		return solver.Result{}, err
	}
	if err := o.place(dl, filepath.Join(o.w.Snapshots.FS(id), o.op.Filename)); err != nil {
		o.w.Snapshots.Remove(id)
		return solver.Result{}, err
	}
	return o.w.commit(id, "", o.v.Meta().Name)
}

// place writes the downloaded file at p: mode 0600, owned by root, its
// times the Last-Modified time or else the Unix epoch, as BuildKit does.
func (o *httpOp) place(dl download, p string) error {
	rc, err := o.w.Registries.Content.Open(dl.blob)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := filecopy.WriteFile(p, rc); err != nil {
		return err
	}
	if err := os.Chmod(p, 0o600); err != nil {
		return err
	}
	mtime := time.Unix(0, 0)
	if !dl.lastModified.IsZero() {
		mtime = dl.lastModified
	}
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: p, Err: err}
	}
	return nil
}
