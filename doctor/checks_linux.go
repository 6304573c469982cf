//go:build linux

package doctor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"

	"github.com/builder-dev/builder/internal/userns"
	"github.com/builder-dev/builder/platform"
	"golang.org/x/sys/unix"
)

// Host is where the checks look. RealHost is this machine; tests use fake
// trees with Probe false.
type Host struct {
	Proc, Sys, Etc, Dev string
	Binfmt              string // binfmt_misc mount point
	UID, GID            int
	User                string // login name, for /etc/subuid
	LookPath            func(string) (string, error)
	// Probe runs the checks that create a user namespace or mount an
	// overlay; only meaningful on the real host.
	Probe bool
}

// RealHost describes this machine and the user running the check. Run
// as root through sudo, the subordinate ids checked are SUDO_USER's.
func RealHost() Host {
	h := Host{Proc: "/proc", Sys: "/sys", Etc: "/etc", Dev: "/dev", Binfmt: platform.BinfmtDir,
		UID: os.Getuid(), GID: os.Getgid(), LookPath: exec.LookPath, Probe: true}
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	}
	if h.UID == 0 && os.Getenv("SUDO_USER") != "" {
		h.User = os.Getenv("SUDO_USER")
	}
	return h
}

// Run runs every check against h.
func Run(ctx context.Context, h Host) Report {
	return Report{Checks: []Check{
		checkUserns(ctx, h),
		checkSubIDs(h),
		checkOverlay(ctx, h),
		checkCgroups(h),
		checkSeccomp(h),
		checkNetwork(h),
		checkEmulators(h),
	}}
}

func readTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

func checkUserns(ctx context.Context, h Host) Check {
	c := Check{Name: "userns"}
	if v, err := readTrim(filepath.Join(h.Proc, "sys/user/max_user_namespaces")); err != nil {
		c.Status, c.Detail = Fail, "the kernel has no user namespaces (CONFIG_USER_NS): rootless builds cannot run"
		return c
	} else if v == "0" {
		c.Status, c.Detail = Fail, "user.max_user_namespaces is 0: rootless builds cannot run"
		c.Fix = "sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d/ to keep it)"
		return c
	}
	if v, err := readTrim(filepath.Join(h.Proc, "sys/kernel/unprivileged_userns_clone")); err == nil && v == "0" {
		c.Status, c.Detail = Fail, "kernel.unprivileged_userns_clone is 0: ordinary users cannot create user namespaces"
		c.Fix = "sysctl -w kernel.unprivileged_userns_clone=1 (and in /etc/sysctl.d/ to keep it)"
		return c
	}
	if v, err := readTrim(filepath.Join(h.Proc, "sys/kernel/apparmor_restrict_unprivileged_userns")); err == nil && v == "1" {
		c.Status, c.Detail = Fail, "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)"
		c.Fix = "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns for the builder binary"
		return c
	}
	if h.Probe {
		if err := probeUserns(ctx, h); err != nil {
			c.Status, c.Detail = Fail, "creating a user namespace failed: "+err.Error()
			c.Fix = "check the sysctls above and any seccomp or LSM policy of the container this runs in"
			return c
		}
		c.Status, c.Detail = OK, "a user namespace can be created"
		return c
	}
	c.Status, c.Detail = OK, "user namespaces are enabled"
	return c
}

// fullRange is how many ids an image may use (uid and gid 0-65535).
const fullRange = 65536

func checkSubIDs(h Host) Check {
	c := Check{Name: "subuid"}
	if h.User == "" || (h.UID == 0 && h.User == "root") {
		c.Status, c.Detail = OK, "running as root: subordinate ids are needed only by rootless builds (run doctor as the user who builds, or with sudo)"
		return c
	}
	fix := fmt.Sprintf("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s (as root; pick a range no other user has)", h.User)
	var short []string
	for _, f := range []string{"subuid", "subgid"} {
		ranges, err := userns.SubIDs(filepath.Join(h.Etc, f), h.User, h.UID)
		if err != nil && !os.IsNotExist(err) {
			c.Status, c.Detail = Warn, fmt.Sprintf("reading /etc/%s: %v", f, err)
			return c
		}
		// As many as the rootless re-exec maps: every range.
		total := userns.Total(userns.Usable(ranges))
		if total < fullRange {
			short = append(short, fmt.Sprintf("/etc/%s has %d ids for %s", f, total, h.User))
		}
	}
	if len(short) > 0 {
		c.Status, c.Fix = Warn, fix
		c.Detail = strings.Join(short, ", ") + fmt.Sprintf(" (want %d): rootless builds map only the user's own id, and files of other owners cannot be unpacked", fullRange)
		return c
	}
	var missing []string
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := h.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		c.Status, c.Detail = Warn, strings.Join(missing, " and ")+" not found: the subordinate ranges cannot be mapped"
		c.Fix = "apt-get install uidmap"
		return c
	}
	c.Status, c.Detail = OK, fmt.Sprintf("%s has %d+ subordinate uids and gids, and newuidmap/newgidmap are installed", h.User, fullRange)
	return c
}

func checkOverlay(ctx context.Context, h Host) Check {
	c := Check{Name: "overlay"}
	fs, err := os.ReadFile(filepath.Join(h.Proc, "filesystems"))
	if err != nil || !slices.Contains(strings.Fields(string(fs)), "overlay") {
		c.Status, c.Detail = Warn, "the kernel has no overlay filesystem: layers are copied instead (slower, more disk)"
		c.Fix = "modprobe overlay"
		return c
	}
	if !h.Probe {
		c.Status, c.Detail = OK, "overlay is available"
		return c
	}
	var notes []string
	c.Status = OK
	if h.UID == 0 {
		if err := probeOverlay(ctx, h, false); err != nil {
			c.Status = Warn
			notes = append(notes, "overlay mount as root failed: "+err.Error())
		} else {
			notes = append(notes, "overlay mounts work")
		}
	}
	if err := probeOverlay(ctx, h, true); err != nil {
		c.Status = Warn
		notes = append(notes, "overlay in a user namespace failed (rootless builds copy layers instead): "+err.Error())
		c.Fix = "Linux 5.11 or later mounts overlay in a user namespace (with userxattr); on an older kernel rootless builds copy"
	} else {
		notes = append(notes, "overlay mounts work in a user namespace (userxattr)")
	}
	c.Detail = strings.Join(notes, "; ")
	return c
}

// CgroupMode is how the cgroup hierarchy is mounted.
func cgroupMode(sys string) string {
	switch {
	case exists(filepath.Join(sys, "fs/cgroup/cgroup.controllers")):
		return "v2"
	case exists(filepath.Join(sys, "fs/cgroup/unified/cgroup.controllers")):
		return "hybrid"
	case exists(filepath.Join(sys, "fs/cgroup/memory")):
		return "v1"
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// ownCgroup is this process's cgroup v2 path ("0::/path" in /proc/self/cgroup).
func ownCgroup(proc string) (string, error) {
	b, err := os.ReadFile(filepath.Join(proc, "self/cgroup"))
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("no cgroup v2 entry in %s/self/cgroup", proc)
}

const delegateFix = "rootless: let systemd delegate controllers to users: mkdir -p /etc/systemd/system/user@.service.d && " +
	"printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' > /etc/systemd/system/user@.service.d/delegate.conf && systemctl daemon-reload " +
	"(then log in again); or run builder under systemd-run --user --scope -p Delegate=yes"

func checkCgroups(h Host) Check {
	c := Check{Name: "cgroups"}
	mode := cgroupMode(h.Sys)
	switch mode {
	case "":
		c.Status, c.Detail = Warn, "no cgroup filesystem under "+filepath.Join(h.Sys, "fs/cgroup")+": steps run without limits or usage"
		c.Fix = "mount -t cgroup2 none /sys/fs/cgroup"
		return c
	case "v1", "hybrid":
		dir := filepath.Join(h.Sys, "fs/cgroup/memory")
		if unix.Access(dir, unix.W_OK) != nil {
			c.Status, c.Detail, c.Fix = Warn, "cgroup "+mode+": "+dir+" is not writable: steps run without limits or usage", "run as root, or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1) and delegate"
			return c
		}
		c.Status, c.Detail = OK, "cgroup "+mode+", writable"
		return c
	}
	own, err := ownCgroup(h.Proc)
	if err != nil {
		c.Status, c.Detail = Warn, "cgroup v2, but "+err.Error()
		return c
	}
	dir := filepath.Join(h.Sys, "fs/cgroup", own)
	ctrl, _ := readTrim(filepath.Join(dir, "cgroup.controllers"))
	var missing []string
	for _, want := range []string{"cpu", "memory", "pids"} {
		if !slices.Contains(strings.Fields(ctrl), want) {
			missing = append(missing, want)
		}
	}
	switch {
	case unix.Access(dir, unix.W_OK) != nil:
		c.Status, c.Fix = Warn, delegateFix
		c.Detail = fmt.Sprintf("cgroup v2, but %s (this process's cgroup) is not delegated to uid %d: steps run without limits or usage", own, h.UID)
	case len(missing) > 0:
		c.Status, c.Fix = Warn, delegateFix
		c.Detail = fmt.Sprintf("cgroup v2, delegated at %s, without the %s controller(s): those limits cannot be set", own, strings.Join(missing, ", "))
	default:
		c.Status, c.Detail = OK, fmt.Sprintf("cgroup v2, delegated at %s with %s", own, ctrl)
	}
	return c
}

func checkSeccomp(h Host) Check {
	c := Check{Name: "seccomp"}
	status, err := os.ReadFile(filepath.Join(h.Proc, "self/status"))
	var mode string
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
			mode = strings.TrimSpace(v)
		}
	}
	if err != nil || mode == "" {
		c.Status, c.Detail = Fail, "the kernel has no seccomp (CONFIG_SECCOMP): RUN steps need Docker's syscall filter and fail without it"
		c.Fix = "use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER"
		return c
	}
	actions, err := readTrim(filepath.Join(h.Proc, "sys/kernel/seccomp/actions_avail"))
	if err != nil || !strings.Contains(actions, "errno") {
		c.Status, c.Detail = Fail, "seccomp filters (CONFIG_SECCOMP_FILTER) with the errno action are unavailable"
		c.Fix = "use a kernel built with CONFIG_SECCOMP_FILTER"
		return c
	}
	c.Status, c.Detail = OK, "seccomp filters are available (this process is in seccomp mode "+mode+")"
	return c
}

func checkNetwork(h Host) Check {
	c := Check{Name: "network"}
	var helpers []string
	for _, tool := range []string{"pasta", "slirp4netns"} {
		if _, err := h.LookPath(tool); err == nil {
			helpers = append(helpers, tool)
		}
	}
	if len(helpers) == 0 {
		c.Status, c.Detail = Warn, "neither pasta nor slirp4netns is installed: RUN steps get the host's network instead of a private one"
		c.Fix = "apt-get install passt slirp4netns"
		return c
	}
	tun := filepath.Join(h.Dev, "net/tun")
	st, err := os.Stat(tun)
	if err != nil {
		c.Status, c.Detail = Warn, tun+" is missing: "+strings.Join(helpers, " and ")+" cannot make a network; RUN steps get the host's"
		c.Fix = "modprobe tun (or, in a container, pass the device: --device /dev/net/tun)"
		return c
	}
	if h.UID != 0 && st.Mode().Perm()&0o006 != 0o006 {
		c.Status, c.Detail = Warn, fmt.Sprintf("%s is %04o: rootless builds cannot open it, so RUN steps get the host's network", tun, st.Mode().Perm())
		c.Fix = "chmod 0666 " + tun + " (Debian's udev rules make it so)"
		return c
	}
	c.Status, c.Detail = OK, strings.Join(helpers, " and ")+" installed, "+tun+" usable"
	return c
}

// foreignPlatforms are the platforms doctor reports emulation for.
var foreignPlatforms = []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/riscv64", "linux/ppc64le", "linux/s390x", "linux/386"}

func checkEmulators(h Host) Check {
	c := Check{Name: "emulators"}
	var ok, unfixed, missing []string
	for _, name := range foreignPlatforms {
		p, err := platform.Parse(name)
		if err != nil || platform.Native(p) {
			continue
		}
		emu := platform.EmulatorName(p)
		e, err := platform.ReadEmulator(h.Binfmt, emu)
		if err != nil {
			c.Status, c.Detail = Warn, err.Error()+": only "+platform.Format(platform.Host())+" RUN steps can run"
			c.Fix = platform.RegisterHint("qemu-aarch64")
			return c
		}
		switch {
		case !e.Registered || !e.Enabled:
			missing = append(missing, emu)
		case !e.Fixed():
			unfixed = append(unfixed, emu)
		default:
			ok = append(ok, name)
		}
	}
	switch {
	case len(unfixed) > 0:
		c.Status = Warn
		c.Detail = "registered without the F flag (the sandbox cannot open the interpreter): " + strings.Join(unfixed, ", ")
		c.Fix = fmt.Sprintf("for each: echo -1 > %s/NAME; then apt-get install %s binfmt-support && update-binfmts --enable NAME", h.Binfmt, platform.EmulatorPackage)
	case len(ok) == 0:
		c.Status = Warn
		c.Detail = "no QEMU emulator registered: only " + platform.Format(platform.Host()) + " RUN steps can run"
		c.Fix = platform.RegisterHint("qemu-aarch64")
	default:
		c.Status = OK
		c.Detail = "RUN steps can run for " + strings.Join(ok, ", ")
		if len(missing) > 0 {
			c.Detail += "; not registered: " + strings.Join(missing, ", ")
		}
	}
	return c
}
