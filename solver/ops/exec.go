package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
	"github.com/opencontainers/go-digest"
)

type execOp struct {
	w  *Worker
	op llb.ExecOp
	v  *llb.Vertex
	// sess supplies secrets and SSH agents (see Worker.OpsFor).
	sess *Session
	// sums are checksums of the build context files mounted (contextSums).
	sumsOnce sync.Once
	sums     []string
	sumsErr  error
}

func (o *execOp) CacheKey(ctx context.Context, in []digest.Digest) (digest.Digest, error) {
	sums, err := o.contextSums()
	if err != nil {
		return "", err
	}
	return opKey(o.op, in, sums...), nil
}

// KeyParts implements solver.KeyDescriber.
func (o *execOp) KeyParts() []solver.Part {
	parts := []solver.Part{
		{Name: "command", Value: strings.Join(o.op.Args, "\x00")},
		{Name: "working directory", Value: o.op.Cwd},
		{Name: "user", Value: o.op.User},
		{Name: "heredoc", Value: string(mustJSON(o.op.Files))},
	}
	parts = append(parts, o.mountKeyParts()...)
	for _, kv := range o.op.Env {
		k, v, _ := strings.Cut(kv, "=")
		parts = append(parts, solver.Part{Name: "env:" + k, Value: v})
	}
	return parts
}

func (o *execOp) Run(ctx context.Context, inputs []solver.Result, log io.Writer) (solver.Result, error) {
	parent := inputs[0].Snapshot
	id, mounts, err := o.w.newLayer(ctx, parent)
	if err != nil {
		return solver.Result{}, err
	}
	state, err := o.w.scratchDir("run-")
	if err != nil {
		o.w.Snapshots.Remove(id)
		return solver.Result{}, err
	}
	defer os.RemoveAll(state)
	inline, err := writeInlineFiles(state, o.op.Files)
	if err != nil {
		o.w.Snapshots.Remove(id)
		return solver.Result{}, err
	}
	runMounts, err := o.prepareMounts(ctx, state, inputs)
	if err != nil {
		o.w.Snapshots.Remove(id)
		return solver.Result{}, err
	}
	defer runMounts.close()
	var usage cgroup.Usage
	defer reportUsage(log, &usage)
	network := executor.NetworkDefault
	switch o.op.Network {
	case llb.NetworkNone:
		network = executor.NetworkNone
	case llb.NetworkHost:
		network = executor.NetworkHost
	}
	spec := executor.Spec{
		Mounts:    inline,
		RunMounts: runMounts.mounts,
		Network:   network,
		Insecure:  o.op.Security == llb.SecurityInsecure,
		ElideSync: elidesSync(o.op),
		ShmSize:   o.op.ShmSize,
		Resources: o.limits(),
		Usage:     &usage,
		Rootfs:    mounts,
		UpperDir:  o.w.Snapshots.UpperDir(id),
		Args:      o.op.Args,
		Env:       withEnv(append(append([]string(nil), o.op.Env...), o.op.ProxyEnv...), runMounts.env),
		Cwd:       o.op.Cwd,
		User:      o.op.User,
		Hostname:  o.op.Hostname,
		StateDir:  state,
		Stdout:    log, Stderr: log,
	}
	for _, h := range o.op.ExtraHosts {
		spec.ExtraHosts = append(spec.ExtraHosts, executor.HostIP{Host: h.Host, IP: h.IP})
	}
	for _, u := range o.op.Ulimits {
		spec.Ulimits = append(spec.Ulimits, executor.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	err = executor.Run(ctx, spec)
	var exit *executor.ExitError
	kept := false
	if err != nil && errors.As(err, &exit) && ctx.Err() == nil && o.sess != nil && o.sess.OnRunFailure != nil {
		name := o.v.Meta().Name
		keep := func() (string, error) {
			if kept {
				return "", errors.New("the failed step's filesystem is kept already")
			}
			kept = true
			res, err := o.w.commitNow(id, parent, "failed step kept: "+name)
			return res.Snapshot, err
		}
		o.sess.OnRunFailure(ctx, RunFailure{Step: name, Err: err, Spec: spec, Keep: keep})
	}
	if err != nil {
		if !kept {
			o.w.Snapshots.Remove(id)
		}
		return solver.Result{}, fmt.Errorf("%q %w", strings.Join(o.op.Args, " "), err)
	}
	return o.w.commit(id, parent, o.v.Meta().Name)
}

// Prepare implements solver.Preparer: the sandbox's set-up that does not
// depend on the step's inputs (the build's network, the seccomp program,
// the init) begins while the steps before it run (llb's networks are
// executor's).
func (o *execOp) Prepare() {
	executor.Prepare(executor.Spec{Network: o.op.Network, Resources: o.limits(), ElideSync: elidesSync(o.op), Insecure: o.op.Security == llb.SecurityInsecure})
}

// limits are the build's cgroup limits for this step.
func (o *execOp) limits() cgroup.Limits {
	if o.sess == nil {
		return cgroup.Limits{}
	}
	return o.sess.Resources
}

// reportUsage passes what a step's processes used on to its progress.
func reportUsage(log io.Writer, u *cgroup.Usage) {
	if r, ok := log.(solver.UsageReporter); ok && !u.IsZero() {
		r.ReportUsage(solver.Usage{CPU: u.CPU, PeakMemory: u.PeakMemory, ReadBytes: u.ReadBytes, WriteBytes: u.WriteBytes})
	}
}

// writeInlineFiles writes heredoc files into the run's scratch dir and
// returns read-only bind mounts for them.
func writeInlineFiles(dir string, files []llb.InlineFile) ([]executor.BindMount, error) {
	var mounts []executor.BindMount
	for i, f := range files {
		p := filepath.Join(dir, "inline-"+strconv.Itoa(i))
		if err := os.WriteFile(p, []byte(f.Data), 0o600); err != nil {
			return nil, err
		}
		if err := os.Chmod(p, os.FileMode(f.Mode)); err != nil {
			return nil, err
		}
		mounts = append(mounts, executor.BindMount{Source: p, Target: f.Path, Readonly: true})
	}
	return mounts, nil
}

// elidesSync says whether the step's sync calls may be elided: a syncfs
// before its record makes its layer durable, but nothing does a writable
// cache mount's files, which later builds use after a crash (BuildKit
// never elides). Read-only caches, tmpfs, binds (writes discarded) and
// secrets leave nothing behind.
func elidesSync(op llb.ExecOp) bool {
	return !slices.ContainsFunc(op.Mounts, func(m llb.ExecMount) bool { return m.Type == llb.MountCache && !m.Readonly })
}
