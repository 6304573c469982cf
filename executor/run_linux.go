package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/builder-dev/builder/executor/cgroup"
	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

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
	if err := context.Cause(ctx); ctx.Err() != nil {
		return err
	}
	nw, err := planNetwork(spec)
	if err != nil {
		return err
	}
	if err := writeEtcFiles(spec, nw); err != nil {
		return err
	}
	cfg, err := newInitConfig(spec)
	if err != nil {
		return err
	}

	specR, specW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer specR.Close()
	defer specW.Close()
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer reportR.Close()
	defer reportW.Close()
	var netR, netW *os.File
	if nw.helper != nil {
		if netR, netW, err = os.Pipe(); err != nil {
			return err
		}
		defer netR.Close()
		defer netW.Close()
	}

	cmd := exec.CommandContext(ctx, initPath())
	cmd.Args = []string{"builder-sandbox-init"}
	// The init allocates little and runs briefly: no GC, few threads.
	// The user process gets spec.Env, none of this.
	cmd.Env = []string{initEnv + "=" + initEnvValue, "GOMAXPROCS=1", "GOGC=off"}
	cmd.ExtraFiles = []*os.File{specFD - 3: specR, reportFD - 3: reportW}
	if netR != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, netR) // netFD
	} else if nw.shared != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, nw.shared) // netFD
	}
	cmd.Stdout, cmd.Stderr = spec.Stdout, spec.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: cloneFlags() | nw.clone,
		// The kernel sends Pdeathsig when the *thread* that forked the
		// child exits, not the process. Go ends a thread only when a
		// goroutine exits while locked to it, so this goroutine stays
		// locked (and its thread alive) until the sandbox is reaped.
		Pdeathsig: syscall.SIGKILL,
	}
	stdinW, err := setStdin(cmd, spec.Stdin)
	if err != nil {
		return err
	}
	if tty, ok := spec.Stdin.(*os.File); ok && spec.Terminal {
		// The child's new process group becomes the terminal's
		// foreground group (set in the child, before exec).
		cmd.SysProcAttr.Foreground, cmd.SysProcAttr.Ctty = true, int(tty.Fd())
		defer takeTerminalBack(tty)
	}
	if stdinW != nil {
		defer stdinW.Close()
	}

	cg, err := cgroup.New(spec.Resources)
	if err != nil {
		return err
	}
	cmd.Cancel = func() error { return killSandbox(cg, cmd.Process) }

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return errors.Join(fmt.Errorf("starting sandbox init: %w", err), deleteCgroup(cg))
	}
	// The init waits for the spec before it runs anything: join it to
	// the cgroup first, so all that runs in the sandbox is inside.
	if err := joinCgroup(cg, cmd); err != nil {
		return err
	}
	specR.Close()
	reportW.Close()
	if nw.helper != nil {
		// The init's network namespace exists: configure it while the
		// init sets up the rest.
		netR.Close()
		stop := nw.start(cmd.Process.Pid, netW)
		defer stop()
	}
	if f, ok := cmd.Stdin.(*os.File); ok && stdinW != nil {
		f.Close()
		go func() {
			io.Copy(stdinW, spec.Stdin)
			stdinW.Close()
		}()
	}

	// The init reads the whole spec before it writes anything, so this
	// cannot deadlock; if the init died, the write fails with EPIPE and
	// the reports below say so.
	cfg.Net = nw.init
	cfg.Spec.RunMounts = withSecretSizes(cfg.Spec.RunMounts)
	writeErr := json.NewEncoder(specW).Encode(cfg)
	if writeErr == nil {
		writeErr = sendSecrets(specW, cfg.Spec.RunMounts)
	}
	specW.Close()

	stubs, setupErr := readReports(reportR)
	waitErr := cmd.Wait()
	if stdinW != nil {
		stdinW.Close() // unblocks the copier's next Write
	}

	var result error
	status := exitStatus(cmd.ProcessState)
	switch {
	case ctx.Err() != nil:
		if status != nil {
			result = fmt.Errorf("%w (%w)", context.Cause(ctx), status)
		} else {
			result = context.Cause(ctx)
		}
	case setupErr != nil:
		result = setupErr
	case stubs == nil:
		// No report at all: the init died before finishing setup.
		result = fmt.Errorf("sandbox init exited before reporting: %w", errors.Join(waitErr, writeErr))
	case status != nil:
		result = status
	case waitErr != nil:
		result = waitErr // copying stdout/stderr failed
	}
	result = finishCgroup(cg, spec, result)
	if spec.UpperDir != "" {
		result = errors.Join(result, removeStubs(spec.UpperDir, stubs))
	}
	return result
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
	dec := json.NewDecoder(r)
	for {
		var rep report
		if derr := dec.Decode(&rep); derr != nil {
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

// removeStubs removes, newest first, the mountpoints the init created, from
// the overlay upper directory, if they are still an empty directory or an
// empty regular file there. It never follows symlinks and never removes
// anything else.
func removeStubs(upper string, stubs []string) error {
	var errs []error
	for i := len(stubs) - 1; i >= 0; i-- {
		rel := filepath.Clean("/" + stubs[i])
		if rel == "/" {
			continue
		}
		p := filepath.Join(upper, rel)
		// A symlink anywhere in the path (the process may have made one)
		// makes the secure join differ: leave it alone.
		if sp, err := securejoin.SecureJoin(upper, rel); err != nil || sp != p {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		switch {
		case fi.IsDir():
			err = unix.Rmdir(p) // fails, harmlessly, unless empty
			if err == unix.ENOTEMPTY || err == unix.EEXIST {
				err = nil
			}
		case fi.Mode().IsRegular() && fi.Size() == 0:
			err = unix.Unlink(p)
		}
		if err != nil && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("removing mountpoint stub %s from upper dir: %w", strings.TrimPrefix(rel, "/"), err))
		}
	}
	return errors.Join(errs...)
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
