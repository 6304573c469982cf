package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"

	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/builder-dev/builder/executor/mountpoints"
	"github.com/builder-dev/builder/executor/sandboxinit"
	"github.com/builder-dev/builder/executor/warm"
	"golang.org/x/sys/unix"
)

// Init runs the sandbox init and never returns if this process was started
// by Run as one (when no init binary is in use, see UseInitBinary);
// otherwise it returns at once. Call it first thing in main, and in
// TestMain of packages whose tests call Run.
func Init() { sandboxinit.Main() }

// Run runs spec.Args in a new sandbox and waits for it to exit. It returns
// nil when the process exits 0, an *ExitError when it exits otherwise, a
// *SetupError when the sandbox could not be set up, and an error wrapping
// context.Cause(ctx) when ctx is done first: the sandbox is then killed
// (its cgroup as a whole, and SIGKILL to its pid 1, which takes down
// every process in its pid namespace) and waited for.
//
// The sandbox gets its own cgroup with spec.Resources when one can be made
// (see package cgroup); an *OOMError then reports a process the kernel
// killed at the memory limit, and spec.Usage receives what it used.
//
// Run must not be called from a goroutine that exits while locked to its
// OS thread (see the Pdeathsig note in the code).
func Run(ctx context.Context, spec Spec) error {
	if err := checkSpec(&spec); err != nil {
		return err
	}
	if err := context.Cause(ctx); ctx.Err() != nil {
		return err
	}
	nw, err := planNetwork(ctx, spec)
	if err != nil {
		return err
	}
	if err := writeEtcFiles(spec, nw); err != nil {
		return err
	}
	cfg, err := newInitConfig(spec, nw)
	if err != nil {
		return err
	}
	// The kernel sends Pdeathsig when the *thread* that forked the child
	// exits, not the process. Go ends a thread only when a goroutine exits
	// while locked to it, so this goroutine stays locked (and its thread
	// alive) until the sandbox and its network helper are gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l := &launch{spec: spec, nw: nw}
	defer l.close()
	key, gen := l.warmKey(), warmInits.Gen()
	if err := l.prepare(ctx, key); err != nil {
		return err
	}
	if err := l.start(); err != nil {
		return err
	}
	// The init reads the whole config before it writes anything, so this
	// cannot deadlock; if the init died, the write fails with EPIPE and
	// the reports below say so.
	writeErr := sendConfig(l.specW, cfg)
	l.specW.Close()
	stubs, setupErr := readReports(l.reportR)
	if key != "" {
		// The user process runs: start the next step's init meanwhile.
		l.startWarm(gen, key)
	}
	waitErr := l.cmd.Wait()
	if l.waitOut != nil {
		if err := l.waitOut(); waitErr == nil {
			waitErr = err // as exec.Cmd.Wait reports a failed copy
		}
	}
	if l.stdinW != nil {
		l.stdinW.Close() // unblocks the copier's next Write
	}
	result := l.result(ctx, stubs, setupErr, waitErr, writeErr)
	result = finishCgroup(l.cg, spec, result)
	if spec.UpperDir != "" {
		result = errors.Join(result, mountpoints.RemoveStubs(spec.UpperDir, stubs), mountpoints.Tidy(spec.UpperDir, spec.Rootfs))
	}
	return result
}

// checkSpec refuses a Spec that cannot run and fills in defaults.
func checkSpec(spec *Spec) error {
	switch {
	case len(spec.Args) == 0:
		return errors.New("executor: Spec.Args is empty")
	case len(spec.Rootfs) == 0:
		return errors.New("executor: Spec.Rootfs is empty")
	case spec.StateDir == "":
		return errors.New("executor: Spec.StateDir is empty")
	}
	if spec.Hostname == "" {
		spec.Hostname = DefaultHostname
	}
	return nil
}

// launch is one sandbox init being started and talked to (see
// sandboxinit's protocol.go).
type launch struct {
	spec Spec
	nw   netPlan
	cmd  *exec.Cmd
	cg   *cgroup.Group
	// cancelCG is cg for cmd.Cancel, which may run from the moment the
	// init started, before cg is made.
	cancelCG atomic.Pointer[cgroup.Group]
	// The pipes: the init reads specR (and netR), writes reportW.
	specR, specW, reportR, reportW, netR, netW *os.File
	// warm: cmd was started ahead (warm_linux.go); its stdout and stderr
	// are one pipe, read from outR and copied until waitOut returns.
	warm    bool
	outR    *os.File
	waitOut func() error
	// stdinW feeds a non-file Stdin to the init; nil when not needed.
	stdinW *os.File
	// undo runs at close, last first: terminal, helper.
	undo []func()
}

// prepare makes the pipes and the init's command, or takes the init
// started ahead for key.
func (l *launch) prepare(ctx context.Context, key string) error {
	// The cgroup is made in start; refuse bad limits before anything runs.
	if err := l.spec.Resources.Validate(); err != nil {
		return err
	}
	if key != "" && l.takeWarm(ctx, key) {
		return nil
	}
	var err error
	if l.specR, l.specW, err = os.Pipe(); err != nil {
		return err
	}
	if l.reportR, l.reportW, err = os.Pipe(); err != nil {
		return err
	}
	if l.nw.helper != nil {
		if l.netR, l.netW, err = os.Pipe(); err != nil {
			return err
		}
	}
	netFD := l.nw.shared
	if l.netR != nil {
		netFD = l.netR
	}
	cmd := initCommand(exec.CommandContext(ctx, initPath()), l.nw.clone, l.specR, l.reportW, netFD)
	cmd.Stdout, cmd.Stderr = l.spec.Stdout, l.spec.Stderr
	if l.stdinW, err = setStdin(cmd, l.spec.Stdin); err != nil {
		return err
	}
	if tty, ok := l.spec.Stdin.(*os.File); ok && l.spec.Terminal {
		// The child's new process group becomes the terminal's
		// foreground group (set in the child, before exec).
		cmd.SysProcAttr.Foreground, cmd.SysProcAttr.Ctty = true, int(tty.Fd())
		l.undo = append(l.undo, func() { takeTerminalBack(tty) })
	}
	l.cmd = cmd
	cmd.Cancel = func() error { return killSandbox(l.cancelCG.Load(), cmd.Process) }
	return nil
}

// initCommand makes cmd start the sandbox init with the namespaces of
// every sandbox and netClone, reading specR (and netFD, if not nil),
// writing reportW.
func initCommand(cmd *exec.Cmd, netClone uintptr, specR, reportW, netFD *os.File) *exec.Cmd {
	cmd.Args = []string{"builder-sandbox-init"}
	// The init allocates little and runs briefly: no GC, few threads.
	// The user process gets spec.Env, none of this.
	cmd.Env = []string{sandboxinit.Env + "=" + sandboxinit.EnvInit, "GOMAXPROCS=1", "GOGC=off"}
	cmd.ExtraFiles = []*os.File{sandboxinit.SpecFD - 3: specR, sandboxinit.ReportFD - 3: reportW}
	if netFD != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, netFD) // NetFD
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: cloneFlags() | netClone, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// start starts the init (unless it was started ahead), makes its cgroup
// and joins it, starts the network helper on its namespace and the stdin
// and output copiers.
func (l *launch) start() error {
	if !l.warm {
		if err := l.startCold(); err != nil {
			return err
		}
	}
	if r, ok := l.spec.Stdout.(CPUReporter); ok && l.cg != nil {
		r.ReportCPU(l.cg.CPU) // one file read: cpu.stat or cpuacct.usage
	}
	l.specR.Close()
	l.reportW.Close()
	if l.nw.helper != nil {
		// The init's network namespace exists: configure it while the
		// init sets up the rest.
		l.netR.Close()
		l.undo = append(l.undo, l.nw.start(l.cmd.Process.Pid, l.netW))
	}
	if l.outR != nil {
		l.waitOut = warm.CopyOut(l.spec.Stdout, l.outR)
	}
	if f, ok := l.cmd.Stdin.(*os.File); ok && l.stdinW != nil {
		f.Close()
		go func() {
			io.Copy(l.stdinW, l.spec.Stdin)
			l.stdinW.Close()
		}()
	}
	return nil
}

// startCold starts the init, makes its cgroup and joins it (an init
// started ahead has joined its own).
func (l *launch) startCold() error {
	if err := l.cmd.Start(); err != nil {
		return fmt.Errorf("starting sandbox init: %w", err)
	}
	// The init starts its runtime, then waits for its config before it
	// runs anything: make its cgroup meanwhile, and join it before the
	// config goes, so that all that runs in the sandbox is inside.
	cg, err := cgroup.New(l.spec.Resources)
	if err != nil {
		l.cmd.Process.Kill()
		l.cmd.Wait()
		return err
	}
	l.cg = cg
	l.cancelCG.Store(cg)
	return joinCgroup(cg, l.cmd)
}

// close undoes what prepare and start did, once the init is reaped (or
// never started).
func (l *launch) close() {
	for i := len(l.undo) - 1; i >= 0; i-- {
		l.undo[i]()
	}
	if l.stdinW != nil {
		l.stdinW.Close()
	}
	for _, f := range []*os.File{l.specR, l.specW, l.reportR, l.reportW, l.netR, l.netW, l.outR} {
		if f != nil {
			f.Close()
		}
	}
}

// sendConfig writes the init's config, then the seccomp program (in one
// write), then the secrets' bytes (see sandboxinit's readPayload).
func sendConfig(w io.Writer, cfg sandboxinit.Config) error {
	if _, err := w.Write(append(sandboxinit.MarshalConfig(&cfg), cfg.Seccomp...)); err != nil {
		return err
	}
	return sendSecrets(w, cfg.RunMounts)
}

// result is Run's error once the init was reaped, before the cgroup's
// verdict: cancellation first, then a setup failure, then the exit.
func (l *launch) result(ctx context.Context, stubs []string, setupErr, waitErr, writeErr error) error {
	status := exitStatus(l.cmd.ProcessState)
	switch {
	case ctx.Err() != nil:
		if status != nil {
			return fmt.Errorf("%w (%w)", context.Cause(ctx), status)
		}
		return context.Cause(ctx)
	case setupErr != nil:
		return setupErr
	case stubs == nil:
		// No report at all: the init died before finishing setup.
		return fmt.Errorf("sandbox init exited before reporting: %w", errors.Join(waitErr, writeErr))
	case status != nil:
		return status
	}
	return waitErr // nil, or copying stdout/stderr failed
}

// cloneFlags are the namespaces of every sandbox; planNetwork adds the
// network namespace.
func cloneFlags() uintptr {
	return syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC
}

// setStdin gives the init a stdin. os/exec would copy from a non-file
// reader itself, but then Wait would block until that reader returns, which
// may be never; our copier is abandoned instead, and ends at its next Write
// after the sandbox exits.
func setStdin(cmd *exec.Cmd, r io.Reader) (*os.File, error) {
	switch r := r.(type) {
	case nil:
		return nil, nil
	case *os.File:
		cmd.Stdin = r
		return nil, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdin = pr
	return pw, nil
}

// readReports reads the init's reports until EOF. stubs is non-nil once
// any report arrived.
func readReports(r io.Reader) (stubs []string, err error) {
	for {
		var rep sandboxinit.Report
		if derr := sandboxinit.ReadReport(r, &rep); derr != nil {
			if derr != io.EOF && err == nil {
				err = fmt.Errorf("reading sandbox init report: %w", derr)
			}
			return stubs, err
		}
		if stubs == nil {
			stubs = []string{}
		}
		stubs = append(stubs, rep.Stubs...)
		if rep.Error != "" && err == nil {
			err = &SetupError{Msg: rep.Error, Errno: syscall.Errno(rep.Errno)}
		}
	}
}

// exitStatus turns a finished process's status into nil or an *ExitError.
func exitStatus(ps *os.ProcessState) error {
	if ps == nil {
		return nil
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return nil
	}
	switch {
	case ws.Signaled():
		return &ExitError{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	case ws.ExitStatus() != 0:
		return &ExitError{Code: ws.ExitStatus()}
	}
	return nil
}

// writeEtcFiles writes the files the init bind-mounts at /etc/hosts and
// /etc/resolv.conf.
func writeEtcFiles(spec Spec, nw netPlan) error {
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", spec.Hostname)
	for _, h := range spec.ExtraHosts {
		hosts += h.IP + "\t" + h.Host + "\n"
	}
	if err := os.WriteFile(filepath.Join(spec.StateDir, "hosts"), []byte(hosts), 0o644); err != nil {
		return fmt.Errorf("writing sandbox hosts file: %w", err)
	}
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading host resolv.conf: %w", err)
	}
	if err := os.WriteFile(filepath.Join(spec.StateDir, "resolv.conf"), resolvConf(host, nw.dns, nw.keepDNS), 0o644); err != nil {
		return fmt.Errorf("writing sandbox resolv.conf: %w", err)
	}
	return nil
}

// takeTerminalBack makes this process's group the foreground group of tty
// again after a Terminal sandbox. A background group that sets the
// foreground group gets SIGTTOU unless it ignores it, so it is ignored for
// the call.
func takeTerminalBack(tty *os.File) {
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	unix.IoctlSetPointerInt(int(tty.Fd()), unix.TIOCSPGRP, unix.Getpgrp())
}
