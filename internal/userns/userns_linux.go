//go:build linux

package userns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// childEnv marks the re-executed child; its value is the mapping kind.
const childEnv = "_BUILDER_USERNS_CHILD"

// Rootless reports whether this process is a rootless builder inside its
// user namespace.
func Rootless() bool { return os.Getenv(childEnv) != "" }

// SingleID reports whether the namespace maps only the user's own ids, so
// files of other owners cannot exist in it.
func SingleID() bool { return os.Getenv(childEnv) == "single" }

// Init must run first in main, after executor.Init. In the re-executed
// child it waits until the parent has written the id maps and returns. For
// an ordinary user it re-executes the program in a new user namespace and
// exits with the child's status; warn receives a warning when only a single
// id can be mapped. For root it returns at once.
func Init(warn func(string)) {
	if Rootless() {
		waitForMaps()
		return
	}
	if os.Geteuid() == 0 {
		return
	}
	code, err := reexec(warn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ERROR: rootless:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func waitForMaps() {
	mode := os.Getenv(childEnv)
	if mode == "ready" {
		return
	}
	f := os.NewFile(3, "userns-go-ahead")
	if f == nil {
		return
	}
	var b [1]byte
	f.Read(b[:]) // EOF once the parent has written the maps
	f.Close()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "ERROR: rootless: the user namespace's id maps were not set up")
		os.Exit(1)
	}
	if mode == "subids" {
		// We were exec'd before newuidmap wrote our map, as an unmapped
		// user, so execve dropped our capabilities. Now that we are uid
		// 0 in the namespace, exec again to get them back.
		self, err := os.Executable()
		if err == nil {
			os.Setenv(childEnv, "ready")
			err = syscall.Exec(self, os.Args, os.Environ())
		}
		fmt.Fprintln(os.Stderr, "ERROR: rootless: re-executing in the user namespace:", err)
		os.Exit(1)
	}
}

// reexec starts this program again in a new user namespace, with the
// subordinate ids mapped when newuidmap/newgidmap and /etc/subuid and
// /etc/subgid allow, else only the caller's own ids, and waits for it.
func reexec(warn func(string)) (int, error) {
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return 0, errors.New("this kernel has no user namespaces (CONFIG_USER_NS); run builder as root")
	}
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	uid, gid := os.Getuid(), os.Getgid()
	name := strconv.Itoa(uid)
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	subuid, errU := subIDs("/etc/subuid", name, uid)
	subgid, errG := subIDs("/etc/subgid", name, uid)
	newuidmap, errNU := exec.LookPath("newuidmap")
	newgidmap, errNG := exec.LookPath("newgidmap")

	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	full := errU == nil && errG == nil && errNU == nil && errNG == nil
	mode := "subids"
	if !full {
		// Only our own id can be mapped without the setuid helpers:
		// files owned by other users cannot be represented.
		mode = "single"
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = false
		if warn != nil {
			warn("rootless: mapping only your own uid and gid, so images with files owned by other users cannot be built or unpacked exactly; " + missing(errU, errG, errNU, errNG, name))
		}
	}
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return 0, fmt.Errorf("starting builder in a user namespace: %w", err)
	}
	r.Close()
	if full {
		pid := strconv.Itoa(cmd.Process.Pid)
		uidArgs := append([]string{newuidmap, pid}, mapArgs(uid, subuid)...)
		gidArgs := append([]string{newgidmap, pid}, mapArgs(gid, subgid)...)
		if err := writeMaps(uidArgs, gidArgs); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			w.Close()
			return 0, err
		}
	}
	w.Close()
	return waitForwarding(cmd)
}

// writeMaps runs newuidmap and newgidmap (each argv complete) on the
// child, which waits on its pipe until they are done.
func writeMaps(argvs ...[]string) error {
	for _, c := range argvs {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %v: %s", c[0], strings.Join(c[1:], " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// waitForwarding waits for the re-executed builder, passing on the
// signals that would stop this one, and returns its exit code (128+N for
// a signal, as a shell reports it).
func waitForwarding(cmd *exec.Cmd) (int, error) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	signal.Stop(sigs)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

// subIDs finds the ranges of name (or uid) in a subordinate id file that
// the re-exec maps (see Usable).
func subIDs(file, name string, uid int) ([]IDRange, error) {
	ranges, err := SubIDs(file, name, uid)
	if err != nil {
		return nil, err
	}
	if ranges = Usable(ranges); len(ranges) == 0 {
		return nil, fmt.Errorf("no entry for %s in %s", name, file)
	}
	return ranges, nil
}

// missing says what to install or add for a full mapping.
func missing(errU, errG, errNU, errNG error, name string) string {
	var out []string
	if errNU != nil || errNG != nil {
		out = append(out, "install newuidmap and newgidmap (Debian: apt-get install uidmap)")
	}
	if errU != nil || errG != nil {
		out = append(out, fmt.Sprintf("add a range for %s to /etc/subuid and /etc/subgid (e.g. %s:100000:65536)", name, name))
	}
	return strings.Join(out, " and ")
}

// HostIDs are the user and group ids, outside the namespace, that a
// rootless builder runs as (what its root maps to), read from the id maps;
// ok is false outside a rootless builder's namespace.
func HostIDs() (uid, gid int, ok bool) {
	if !Rootless() {
		return 0, 0, false
	}
	uid, okU := rootMappedTo("/proc/self/uid_map")
	gid, okG := rootMappedTo("/proc/self/gid_map")
	return uid, gid, okU && okG
}

// rootMappedTo returns the outside id of id 0 in an id map file.
func rootMappedTo(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "0" {
			id, err := strconv.Atoi(f[1])
			return id, err == nil
		}
	}
	return 0, false
}
