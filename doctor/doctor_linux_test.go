//go:build linux

package doctor

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost builds a host tree from files (path under the tree -> content);
// tools lists what LookPath finds.
func fakeHost(t *testing.T, files map[string]string, tools ...string) Host {
	root := t.TempDir()
	for p, body := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Host{
		Proc: filepath.Join(root, "proc"), Sys: filepath.Join(root, "sys"), Etc: filepath.Join(root, "etc"),
		Dev: filepath.Join(root, "dev"), Binfmt: filepath.Join(root, "binfmt"), UID: 1000, GID: 1000, User: "alice",
		LookPath: func(name string) (string, error) {
			for _, tool := range tools {
				if tool == name {
					return "/usr/bin/" + name, nil
				}
			}
			return "", errors.New("not found")
		},
	}
}

func TestChecks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		tools []string
		check func(Host) Check
		want  Status
		in    string // in Detail or Fix
	}{
		{"userns ok", map[string]string{"proc/sys/user/max_user_namespaces": "63000\n"}, nil,
			func(h Host) Check { return checkUserns(t.Context(), h) }, OK, "enabled"},
		{"userns max 0", map[string]string{"proc/sys/user/max_user_namespaces": "0\n"}, nil,
			func(h Host) Check { return checkUserns(t.Context(), h) }, Fail, "user.max_user_namespaces=15000"},
		{"userns debian sysctl", map[string]string{"proc/sys/user/max_user_namespaces": "9", "proc/sys/kernel/unprivileged_userns_clone": "0"}, nil,
			func(h Host) Check { return checkUserns(t.Context(), h) }, Fail, "unprivileged_userns_clone=1"},
		{"userns apparmor", map[string]string{"proc/sys/user/max_user_namespaces": "9", "proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1"}, nil,
			func(h Host) Check { return checkUserns(t.Context(), h) }, Fail, "AppArmor"},
		{"subuid ok", map[string]string{"etc/subuid": "bob:100000:65536\nalice:165536:65536\n", "etc/subgid": "1000:165536:65536\n"}, []string{"newuidmap", "newgidmap"},
			checkSubIDs, OK, "alice"},
		{"subuid short", map[string]string{"etc/subuid": "alice:165536:1000\n", "etc/subgid": "alice:165536:65536\n"}, []string{"newuidmap", "newgidmap"},
			checkSubIDs, Warn, "/etc/subuid has 1000 ids"},
		// Two pieces add up: the rootless re-exec maps every range.
		{"subuid split", map[string]string{"etc/subuid": "alice:100000:32768\nalice:300000:32768\n", "etc/subgid": "alice:100000:65536\n"}, []string{"newuidmap", "newgidmap"},
			checkSubIDs, OK, "alice"},
		// The same range twice is mapped once, so it counts once.
		{"subuid overlapping", map[string]string{"etc/subuid": "alice:100000:40000\nalice:100000:40000\n", "etc/subgid": "alice:100000:65536\n"}, []string{"newuidmap", "newgidmap"},
			checkSubIDs, Warn, "/etc/subuid has 40000 ids"},
		{"subuid none", map[string]string{"etc/subuid": "bob:100000:65536\n"}, []string{"newuidmap", "newgidmap"},
			checkSubIDs, Warn, "usermod --add-subuids"},
		{"subuid no newuidmap", map[string]string{"etc/subuid": "alice:1:65536\n", "etc/subgid": "alice:1:65536\n"}, nil,
			checkSubIDs, Warn, "apt-get install uidmap"},
		{"overlay missing", map[string]string{"proc/filesystems": "nodev\tproc\n\text4\n"}, nil,
			func(h Host) Check { return checkOverlay(t.Context(), h) }, Warn, "modprobe overlay"},
		{"overlay present", map[string]string{"proc/filesystems": "nodev\tproc\nnodev\toverlay\n"}, nil,
			func(h Host) Check { return checkOverlay(t.Context(), h) }, OK, "available"},
		{"cgroup v1", map[string]string{"sys/fs/cgroup/memory/tasks": ""}, nil, checkCgroups, OK, "cgroup v1"},
		{"cgroup hybrid", map[string]string{"sys/fs/cgroup/unified/cgroup.controllers": "", "sys/fs/cgroup/memory/tasks": ""}, nil, checkCgroups, OK, "cgroup hybrid"},
		{"cgroup v2 delegated", map[string]string{"sys/fs/cgroup/cgroup.controllers": "cpu memory pids",
			"proc/self/cgroup": "0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n",
			"sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope/cgroup.controllers": "cpuset cpu io memory pids\n"}, nil,
			checkCgroups, OK, "delegated at /user.slice"},
		{"cgroup v2 without memory", map[string]string{"sys/fs/cgroup/cgroup.controllers": "cpu memory pids",
			"proc/self/cgroup": "0::/a\n", "sys/fs/cgroup/a/cgroup.controllers": "pids\n"}, nil,
			checkCgroups, Warn, "cpu, memory"},
		{"no cgroups", map[string]string{"sys/x": ""}, nil, checkCgroups, Warn, "without limits"},
		{"seccomp ok", map[string]string{"proc/self/status": "Name:\tx\nSeccomp:\t0\n", "proc/sys/kernel/seccomp/actions_avail": "kill_process kill_thread trap errno user_notif trace log allow\n"}, nil,
			checkSeccomp, OK, "mode 0"},
		{"seccomp missing", map[string]string{"proc/self/status": "Name:\tx\n"}, nil, checkSeccomp, Fail, "CONFIG_SECCOMP"},
		{"network no helper", map[string]string{"dev/net/tun": ""}, nil, checkNetwork, Warn, "apt-get install passt slirp4netns"},
		{"network no tun", map[string]string{"dev/null": ""}, []string{"pasta"}, checkNetwork, Warn, "modprobe tun"},
		{"emulators not mounted", map[string]string{"binfmt/x": ""}, nil, checkEmulators, Warn, "update-binfmts --enable"},
		{"emulators ok", map[string]string{"binfmt/register": "", "binfmt/qemu-aarch64": "enabled\ninterpreter /q\nflags: PF\n"}, nil,
			checkEmulators, OK, "linux/arm64"},
		{"emulators without F", map[string]string{"binfmt/register": "", "binfmt/qemu-aarch64": "enabled\ninterpreter /q\nflags: P\n"}, nil,
			checkEmulators, Warn, "F flag"},
	} {
		h := fakeHost(t, tc.files, tc.tools...)
		c := tc.check(h)
		if c.Status != tc.want || !strings.Contains(c.Detail+" "+c.Fix, tc.in) {
			t.Errorf("%s: %+v; want %s mentioning %q", tc.name, c, tc.want, tc.in)
		}
		if c.Status != OK && c.Fix == "" && tc.name != "cgroup v2 without memory" {
			t.Errorf("%s: %s without a fix: %+v", tc.name, c.Status, c)
		}
	}
}

func TestTunPermissions(t *testing.T) {
	h := fakeHost(t, map[string]string{"dev/net/tun": ""}, "slirp4netns")
	tun := filepath.Join(h.Dev, "net/tun")
	if err := os.Chmod(tun, 0o600); err != nil {
		t.Fatal(err)
	}
	if c := checkNetwork(h); c.Status != Warn || !strings.Contains(c.Fix, "chmod 0666") {
		t.Errorf("tun 0600 for uid 1000: %+v", c)
	}
	h.UID = 0
	if c := checkNetwork(h); c.Status != OK {
		t.Errorf("tun 0600 for root: %+v", c)
	}
}

// TestRunRealHost runs every check and probe on this machine and checks
// the report's form; in CI (root, .ci/run's setup) it expects the checks
// .ci/run arranges to pass.
func TestRunRealHost(t *testing.T) {
	r := Run(t.Context(), RealHost())
	if len(r.Checks) != 7 {
		t.Fatalf("%d checks, want 7", len(r.Checks))
	}
	var text, js bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", text.String())
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Checks) != 7 {
		t.Fatalf("JSON report does not read back: %v\n%s", err, js.String())
	}
	for _, c := range r.Checks {
		if c.Status != OK && c.Status != Warn && c.Status != Fail {
			t.Errorf("check %s has status %q", c.Name, c.Status)
		}
	}
	if os.Getenv("CI") == "" {
		return
	}
	for _, c := range r.Checks {
		switch c.Name {
		case "userns", "overlay", "seccomp", "emulators":
			if c.Status != OK {
				t.Errorf("CI host: %s is %s: %s (fix: %s)", c.Name, c.Status, c.Detail, c.Fix)
			}
		}
	}
}
