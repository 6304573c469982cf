package ops

import (
	"context"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/solver/ops/cachedir"
	"github.com/builder-dev/builder/solver/ops/filecopy"
	"github.com/builder-dev/builder/solver/ops/sshagent"
	"github.com/builder-dev/builder/source"
	"github.com/builder-dev/builder/source/localctx"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/go-digest"
)

// Session is what one build hands its RUN steps from the host: secrets and
// SSH agent sockets. None of it is part of the graph, a cache key, a layer
// or a log; ops see only ids.
type Session struct {
	// Resources are every RUN step's cgroup limits (--memory, ...). As in
	// Buildah and Docker's classic builder they are not part of a step's
	// cache key (BuildKit has no such limits; the ulimits and cgroup
	// parent it has are in its ExecOp's Meta, so in its key).
	Resources cgroup.Limits
	// Secrets are secret values by id (RUN --mount=type=secret).
	Secrets map[string][]byte
	// SSH are SSH agent sockets by id (RUN --mount=type=ssh).
	SSH map[string]string
	// FetchSecret, when set, supplies the secrets of ids not in Secrets
	// when a step that uses one starts (a `builder serve` client's
	// secrets, asked for over the API); the value is cleared when the
	// step ends. ok is false for a secret the build was not given.
	FetchSecret func(ctx context.Context, id string) (value []byte, ok bool, err error)
	// DialSSH, when set, reaches the SSH agents of ids not in SSH: every
	// connection a step makes to its agent socket is one call (a `builder
	// serve` client's agent, forwarded over the API). ok is false for an
	// agent the build was not given.
	DialSSH func(id string) (dial func(context.Context) (net.Conn, error), ok bool)
	// OnRunFailure, when set, is called when a RUN's process exits with
	// an error (not when the build is cancelled), before its layer is
	// discarded. It must not keep f.Spec after returning.
	OnRunFailure func(ctx context.Context, f RunFailure)
	// Download configures ADD <url>: its timeout and size bound
	// (Progress is set per step).
	Download source.DownloadOptions
	// CacheMounts, when set, records the RUN cache mounts the build's
	// steps mount (for --cache-to ...,cache-mounts=true).
	CacheMounts *cachedir.Uses
	// RestoreCache, when set, may fill the directory dir of cache key
	// (absent or empty) before a step mounts it (--cache-from).
	RestoreCache func(ctx context.Context, key, dir string) (bool, error)
}

// RunFailure is a RUN step whose command failed, as OnRunFailure sees it.
type RunFailure struct {
	// Step names the step; Err is its error.
	Step string
	Err  error
	// Spec is the failed step's sandbox, whose rootfs still holds what the
	// command wrote.
	Spec executor.Spec
	// Keep commits the step's filesystem, as the command left it, as a
	// snapshot (on the step's parent) and returns its id; the layer is then
	// not discarded. Call it at most once, before OnRunFailure returns.
	Keep func() (snapshot string, err error)
}

// OpsFor returns the op constructor for solver.New for a build with sess.
func (w *Worker) OpsFor(sess *Session) func(*llb.Vertex) (solver.Op, error) {
	return func(v *llb.Vertex) (solver.Op, error) {
		op, err := w.Op(v)
		switch o := op.(type) {
		case *execOp:
			o.sess = sess
		case *httpOp:
			if sess != nil {
				o.dl = sess.Download
			}
		}
		return op, err
	}
}

// contextSums returns, for each bind or cache mount whose files come from
// the build context, the mount's source and a checksum of the files it
// selects, so that the step's key changes with them. It is computed once.
func (o *execOp) contextSums() ([]string, error) {
	o.sumsOnce.Do(func() {
		sums := []string{}
		for i, m := range o.op.Mounts {
			l, ok := o.mountLocal(m)
			if !ok {
				continue
			}
			tree, err := localctx.NewTree(l.Dir, l.Excludes)
			if err != nil {
				o.sumsErr = err
				return
			}
			tree.Sums = o.w.DB.FileSums()
			rel := cleanRel(m.Source)
			if tree.Excluded(rel) {
				o.sumsErr = fmt.Errorf("--mount source %s: %w (it is excluded by .dockerignore)", m.Source, localctx.ErrNoMatch)
				return
			}
			sum, err := tree.Checksum(rel, nil)
			if err != nil {
				o.sumsErr = fmt.Errorf("--mount source %s: %w", m.Source, err)
				return
			}
			sums = append(sums, "mount:"+strconv.Itoa(i), sum)
		}
		o.sums = sums
	})
	return o.sums, o.sumsErr
}

// mountLocal returns the build context m reads, if it reads one.
func (o *execOp) mountLocal(m llb.ExecMount) (llb.LocalOp, bool) {
	if m.Input <= 0 || m.Input >= len(o.v.Inputs()) || o.v.Inputs()[m.Input] == nil {
		return llb.LocalOp{}, false
	}
	l, ok := o.v.Inputs()[m.Input].Op().(llb.LocalOp)
	return l, ok
}

// cleanRel makes a mount source a clean relative slash path, "." for all.
func cleanRel(p string) string {
	rel := path.Clean("/" + filepath.ToSlash(p))[1:]
	if rel == "" {
		return "."
	}
	return rel
}

// runMounts is what prepareMounts set up for one run.
type runMounts struct {
	mounts  []executor.Mount
	env     []string
	release []func()
}

func (r *runMounts) close() {
	for i := len(r.release) - 1; i >= 0; i-- {
		r.release[i]()
	}
	r.release = nil
}

// prepareMounts readies the RUN --mount mounts in the run's scratch dir
// state. The caller calls close after the run, also on error.
func (o *execOp) prepareMounts(ctx context.Context, state string, inputs []solver.Result) (*runMounts, error) {
	rm := &runMounts{}
	sshIndex := 0
	for i, m := range o.op.Mounts {
		var err error
		switch m.Type {
		case llb.MountBind:
			err = o.bindMount(rm, state, i, m, inputs)
		case llb.MountCache:
			err = o.cacheMount(ctx, rm, m, inputs)
		case llb.MountTmpfs:
			rm.mounts = append(rm.mounts, executor.Mount{Type: executor.MountTmpfs, Target: m.Target, Size: m.Size, Readonly: m.Readonly})
		case llb.MountSecret:
			err = o.secretMount(ctx, rm, m)
		case llb.MountSSH:
			err = o.sshMount(rm, state, sshIndex, m)
			sshIndex++
		default:
			err = fmt.Errorf("unknown mount type %q", m.Type)
		}
		if err != nil {
			rm.close()
			if m.Type == llb.MountSecret || m.Type == llb.MountSSH {
				return nil, err
			}
			return nil, fmt.Errorf("--mount=type=%s,target=%s: %w", m.Type, m.Target, err)
		}
	}
	return rm, nil
}

// bindMount mounts a file tree: an earlier stage or image (its layers,
// through an overlay whose upper directory is thrown away when writable),
// or the build context (in place when read-only and nothing is
// .dockerignored, else a copy of what it selects).
func (o *execOp) bindMount(rm *runMounts, state string, n int, m llb.ExecMount, inputs []solver.Result) error {
	if m.Input <= 0 || m.Input >= len(inputs) {
		return fmt.Errorf("bind mount has no input")
	}
	in := inputs[m.Input]
	if l, ok := o.mountLocal(m); ok {
		src, err := o.contextSource(state, n, l, m, !m.Readonly || len(l.Excludes) > 0)
		if err != nil {
			return err
		}
		rm.mounts = append(rm.mounts, executor.Mount{Type: executor.MountBind, Source: src, Target: m.Target, Readonly: m.Readonly})
		return nil
	}
	lowers, err := o.w.Lowers(in.Snapshot)
	if err != nil {
		return err
	}
	view := o.w.Snapshots.View(lowers)
	if !m.Readonly {
		if len(lowers) == 0 {
			// An empty tree: a fresh directory takes the writes.
			dir := filepath.Join(state, "bind-"+strconv.Itoa(n))
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
			rm.mounts = append(rm.mounts, executor.Mount{Type: executor.MountBind, Source: dir, Target: m.Target})
			return nil
		}
		if view, err = snapshot.WritableView(view, filepath.Join(state, "bind-"+strconv.Itoa(n))); err != nil {
			return err
		}
	}
	rm.mounts = append(rm.mounts, executor.Mount{Type: executor.MountLayers, Layers: view, Source: cleanRel(m.Source), Target: m.Target, Readonly: m.Readonly})
	return nil
}

// contextSource returns the host path to bind for a mount of the build
// context: the path itself, or with copy a copy of what it selects (the
// .dockerignore applies) in the scratch dir.
func (o *execOp) contextSource(state string, n int, l llb.LocalOp, m llb.ExecMount, copy bool) (string, error) {
	rel := cleanRel(m.Source)
	p, err := securejoin.SecureJoin(l.Dir, rel)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("source %s in the build context: %w", m.Source, err)
	}
	if !copy {
		return p, nil
	}
	dir := filepath.Join(state, "bind-"+strconv.Itoa(n))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	tree, err := localctx.NewTree(l.Dir, l.Excludes)
	if err != nil {
		return "", err
	}
	if err := filecopy.CopyTree(context.Background(), dir, tree, rel); err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return filepath.Join(dir, path.Base(rel)), nil
	}
	return dir, nil
}

// secretMount provides a secret as a read-only file and/or an environment
// variable of the process. The file is written by the sandbox onto a tmpfs
// of its own (executor.MountSecret): its bytes never touch the disk.
func (o *execOp) secretMount(ctx context.Context, rm *runMounts, m llb.ExecMount) error {
	var value []byte
	ok := false
	if o.sess != nil {
		value, ok = o.sess.Secrets[m.ID]
	}
	if !ok && o.sess != nil && o.sess.FetchSecret != nil {
		var err error
		if value, ok, err = o.sess.FetchSecret(ctx, m.ID); err != nil {
			return fmt.Errorf("secret %s: %w", m.ID, err)
		}
		// Held for this step only.
		rm.release = append(rm.release, func() { clear(value) })
	}
	if !ok {
		if m.Required {
			return fmt.Errorf("secret %s is required but was not provided (--secret id=%s,src=FILE or id=%s,env=VAR)", m.ID, m.ID, m.ID)
		}
		return nil
	}
	if m.Env != "" {
		rm.env = append(rm.env, m.Env+"="+string(value))
	}
	if m.Target == "" {
		return nil
	}
	uid, gid, mode := ownerMode(m, 0o400)
	rm.mounts = append(rm.mounts, executor.Mount{
		Type: executor.MountSecret, Target: m.Target, Readonly: true,
		Data: value, UID: uid, GID: gid, Mode: uint32(mode),
	})
	return nil
}

// withEnv returns env with each KEY=VALUE of extra set, replacing any
// earlier value of KEY (a secret's env= wins over ENV and ARG).
func withEnv(env, extra []string) []string {
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		out := env[:0]
		for _, e := range env {
			if ek, _, _ := strings.Cut(e, "="); ek != k {
				out = append(out, e)
			}
		}
		env = append(out, kv)
	}
	return env
}

// ownerMode returns a mount's uid, gid (default 0) and mode (default mode).
func ownerMode(m llb.ExecMount, mode os.FileMode) (uid, gid int, _ os.FileMode) {
	if m.UID != nil {
		uid = int(*m.UID)
	}
	if m.GID != nil {
		gid = int(*m.GID)
	}
	if m.Mode != nil {
		mode = os.FileMode(*m.Mode) & os.ModePerm
	}
	return uid, gid, mode
}

// setOwnerMode applies a mount's uid, gid (default 0) and mode.
func setOwnerMode(p string, m llb.ExecMount, mode os.FileMode) error {
	uid, gid, mode := ownerMode(m, mode)
	if err := os.Chown(p, uid, gid); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

// sshMount forwards an SSH agent: a socket in the scratch dir (with the
// mount's owner and mode) proxies every connection to the agent's socket.
func (o *execOp) sshMount(rm *runMounts, state string, n int, m llb.ExecMount) error {
	sock := ""
	var dial func(context.Context) (net.Conn, error)
	if o.sess != nil {
		sock = o.sess.SSH[m.ID]
		if sock == "" && o.sess.DialSSH != nil {
			dial, _ = o.sess.DialSSH(m.ID)
		}
	}
	if sock == "" && dial == nil {
		if m.Required {
			return fmt.Errorf("ssh agent %s is required but was not provided (--ssh %s or --ssh %s=SOCKET)", m.ID, m.ID, m.ID)
		}
		return nil
	}
	dir := state
	// A socket path must fit in 108 bytes.
	if len(state) > 80 {
		d, err := os.MkdirTemp("", "builder-ssh-")
		if err != nil {
			return err
		}
		rm.release = append(rm.release, func() { os.RemoveAll(d) })
		dir = d
	}
	p := filepath.Join(dir, "ssh-"+strconv.Itoa(n)+".sock")
	if dial == nil {
		dial = func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "unix", sock) }
	}
	proxy, err := sshagent.Listen(p, dial)
	if err != nil {
		return fmt.Errorf("ssh agent %s: %w", m.ID, err)
	}
	rm.release = append(rm.release, proxy.Close)
	if err := setOwnerMode(p, m, 0o600); err != nil {
		return fmt.Errorf("ssh agent %s: %w", m.ID, err)
	}
	go proxy.Serve()
	rm.mounts = append(rm.mounts, executor.Mount{Type: executor.MountBind, Source: p, Target: m.Target})
	return nil
}

// mountKeyParts describes the mounts, network and security mode for
// explanations of cache misses.
func (o *execOp) mountKeyParts() []solver.Part {
	var parts []solver.Part
	if o.op.Network != "" {
		parts = append(parts, solver.Part{Name: "network", Value: o.op.Network})
	}
	if o.op.Security != "" {
		parts = append(parts, solver.Part{Name: "security", Value: o.op.Security})
	}
	if len(o.op.ExtraHosts) > 0 || o.op.ShmSize != 0 || len(o.op.Ulimits) > 0 {
		parts = append(parts, solver.Part{Name: "sandbox", Value: string(mustJSON(struct {
			ExtraHosts []llb.HostIP `json:"add-host,omitempty"`
			ShmSize    int64        `json:"shm-size,omitempty"`
			Ulimits    []llb.Ulimit `json:"ulimit,omitempty"`
		}{o.op.ExtraHosts, o.op.ShmSize, o.op.Ulimits}))})
	}
	for i, m := range o.op.Mounts {
		parts = append(parts, solver.Part{Name: "mount:" + strconv.Itoa(i), Value: string(mustJSON(m))})
	}
	sums, _ := o.contextSums()
	for i := 0; i+1 < len(sums); i += 2 {
		parts = append(parts, solver.Part{Name: "content:" + strings.TrimPrefix(sums[i], "mount:"), Value: sums[i+1]})
	}
	return parts
}

// cacheMountKey names a cache mount's directory: its id and, for a cache
// seeded from another file tree, that tree's content and the source path.
func cacheMountKey(m llb.ExecMount, inputs []solver.Result) digest.Digest {
	id := m.ID
	if id == "" {
		id = m.Target
	}
	if m.Input > 0 && m.Input < len(inputs) {
		in := inputs[m.Input]
		from := in.Content.String()
		if from == "" {
			from = in.Snapshot + in.Dir
		}
		return llb.DigestStrings("cache", id, from, cleanRel(m.Source))
	}
	return cachedir.Key(id)
}
