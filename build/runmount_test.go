package build_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/solver"
)

// checkAbsent fails if any layer has an entry at or below one of paths.
func checkAbsent(t *testing.T, files map[string]imageFile, paths ...string) {
	t.Helper()
	for name := range files {
		n := strings.TrimSuffix(name, "/")
		for _, p := range paths {
			if n == p || strings.HasPrefix(n, p+"/") {
				t.Errorf("layer has %s: a mount leaked into the image", name)
			}
		}
	}
}

func TestRunMountCache(t *testing.T) {
	base := busyboxBase(t)
	root := t.TempDir()
	st := openState(t, root)
	ctx := writeContext(t, nil)
	df := `FROM {{BASE}} AS seed
RUN mkdir /seed && echo seeded > /seed/f

FROM {{BASE}}
RUN mkdir -p /var/cache
RUN --mount=type=cache,target=/var/cache/app,id=c1 echo run >> /var/cache/app/log && cp /var/cache/app/log /seen
RUN --mount=type=cache,target=/c2,mode=0700,uid=1000,gid=1001 stat -c '%a %u %g' /c2 > /c2stat
RUN --mount=type=cache,target=/c3,ro sh -c 'touch /c3/x 2>/dev/null && echo writable || echo readonly' > /c3ro
RUN --mount=type=cache,target=/c4,from=seed,source=/seed cat /c4/f > /c4seen
`
	files, _ := mustBuild(t, st, base, ctx, df, build.Options{})
	checkContent(t, files, "seen", "run")
	checkContent(t, files, "c2stat", "700 1000 1001")
	checkContent(t, files, "c3ro", "readonly")
	checkContent(t, files, "c4seen", "seeded")
	checkAbsent(t, files, "var/cache/app", "c2", "c3", "c4")

	// The cache outlives the build: a rebuild that runs every step sees
	// what the first build wrote.
	files, _ = mustBuild(t, st, base, ctx, df, build.Options{NoCache: true})
	checkContent(t, files, "seen", "run\nrun")

	// A cached rebuild runs nothing.
	_, ev := mustBuild(t, st, base, ctx, df, build.Options{})
	if ran := ev.ran(); len(ran) != 0 {
		t.Errorf("third build ran %v, want everything cached", ran)
	}

	// builder du lists the caches; prune --all removes them.
	du, err := st.DiskUsage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, r := range du.Records {
		if strings.Contains(r.Description, "cache mount") {
			listed = append(listed, r.Description)
		}
	}
	if len(listed) != 4 {
		t.Errorf("du lists cache mounts %q, want 4", listed)
	}
	if _, err := st.Prune(t.Context(), gc.PruneOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Join(root, "cachemounts")); len(left) != 0 {
		t.Errorf("prune --all left cache mounts %v", left)
	}
	files, _ = mustBuild(t, st, base, ctx, df, build.Options{NoCache: true})
	checkContent(t, files, "seen", "run")
}

// TestRunMountCacheSharing runs two stages in parallel that use one cache:
// "locked" runs them one after the other, "shared" lets them overlap (which
// proves the stages really ran at the same time), "private" gives each its
// own directory.
func TestRunMountCacheSharing(t *testing.T) {
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	ctx := writeContext(t, nil)
	const step = `RUN --mount=type=cache,target=/cache,id=%[1]s,sharing=%[1]s sh -c 'echo start-%[2]s >> /cache/log; echo %[2]s > /cache/owner; sleep 1; cat /cache/owner > /owner; echo end-%[2]s >> /cache/log'`
	for _, sharing := range []string{"locked", "shared", "private"} {
		t.Run(sharing, func(t *testing.T) {
			df := fmt.Sprintf("FROM {{BASE}} AS a\n%s\n\nFROM {{BASE}} AS b\n%s\n\nFROM {{BASE}}\nCOPY --from=a /owner /owner-a\nCOPY --from=b /owner /owner-b\n"+
				"RUN --mount=type=cache,target=/cache,id=%s,sharing=shared cat /cache/log > /log\n",
				fmt.Sprintf(step, sharing, "a"), fmt.Sprintf(step, sharing, "b"), sharing)
			files, _ := mustBuild(t, st, base, ctx, df, build.Options{Parallelism: 2})
			log := strings.Fields(files["log"].content)
			switch sharing {
			case "locked":
				if len(log) != 4 || strings.TrimPrefix(log[0], "start-") != strings.TrimPrefix(log[1], "end-") {
					t.Errorf("locked cache log = %q, want one step's start and end, then the other's", log)
				}
				checkContent(t, files, "owner-a", "a")
				checkContent(t, files, "owner-b", "b")
			case "shared":
				if len(log) != 4 || !strings.HasPrefix(log[1], "start-") {
					t.Errorf("shared cache log = %q, want both steps started before either ended", log)
				}
			case "private":
				checkContent(t, files, "owner-a", "a")
				checkContent(t, files, "owner-b", "b")
			}
			checkAbsent(t, files, "cache")
		})
	}
}

func TestRunMountBind(t *testing.T) {
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	ctx := writeContext(t, map[string]string{
		"data/a.txt":      "context data\n",
		"data/hidden.txt": "ignored\n",
		".dockerignore":   "data/hidden.txt\n",
	})
	df := `FROM {{BASE}} AS src
RUN mkdir /out && echo from-stage > /out/f

FROM {{BASE}}
WORKDIR /work
RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/a.txt > /bound
RUN --mount=type=bind,source=data,target=/mnt/data sh -c 'touch /mnt/data/x 2>/dev/null && echo writable || echo readonly' > /ro
RUN --mount=type=bind,source=data,target=/mnt/data sh -c 'test -e /mnt/data/hidden.txt && echo visible || echo ignored' > /ignored
RUN --mount=type=bind,source=data,target=/mnt/rw,rw sh -c 'echo new > /mnt/rw/new && echo changed > /mnt/rw/a.txt && cat /mnt/rw/new' > /rwseen
RUN --mount=type=bind,target=rel,source=data/a.txt cat /work/rel > /relative
RUN --mount=type=bind,from=src,source=/out,target=/s cat /s/f > /fromstage
RUN --mount=type=bind,from=src,source=/out,target=/s,rw sh -c 'echo changed > /s/f && cat /s/f' > /rwstage
RUN --mount=type=bind,from=src,source=/out,target=/s cat /s/f > /afterrw
RUN --mount=type=bind,from={{BASE}},target=/img test -x /img/bin/busybox && echo image > /fromimage
`
	files, _ := mustBuild(t, st, base, ctx, df, build.Options{})
	checkContent(t, files, "bound", "context data")
	checkContent(t, files, "ro", "readonly")
	checkContent(t, files, "ignored", "ignored")
	checkContent(t, files, "rwseen", "new")
	checkContent(t, files, "relative", "context data")
	checkContent(t, files, "fromstage", "from-stage")
	checkContent(t, files, "rwstage", "changed")
	checkContent(t, files, "afterrw", "from-stage")
	checkContent(t, files, "fromimage", "image")
	checkAbsent(t, files, "mnt", "s", "img", "work/rel")
	if b, _ := os.ReadFile(filepath.Join(ctx, "data", "a.txt")); string(b) != "context data\n" {
		t.Errorf("a writable bind mount changed the context: a.txt = %q", b)
	}
	if _, err := os.Stat(filepath.Join(ctx, "data", "new")); err == nil {
		t.Error("a writable bind mount wrote into the context")
	}

	// The steps key on the files they mount: a context file they do not
	// mount changed, all cached; a.txt changed, they run again.
	if err := os.WriteFile(filepath.Join(ctx, "other.txt"), []byte("not mounted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, ev := mustBuild(t, st, base, ctx, df, build.Options{})
	if ran := ev.ran(); len(ran) != 0 {
		t.Errorf("rebuild ran %v, want everything cached", ran)
	}
	if err := os.WriteFile(filepath.Join(ctx, "data", "a.txt"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, ev = mustBuild(t, st, base, ctx, df, build.Options{})
	checkContent(t, files, "bound", "edited")
	checkContent(t, files, "relative", "edited")
	var ran []string
	for _, name := range ev.ran() {
		if !strings.HasPrefix(name, "[internal]") {
			ran = append(ran, name)
		}
	}
	if len(ran) != 9 {
		t.Errorf("after a.txt changed, ran %d steps %q, want the 9 from the first that mounts it", len(ran), ran)
	}
}

func TestRunMountTmpfs(t *testing.T) {
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	df := `FROM {{BASE}}
RUN --mount=type=tmpfs,target=/scratch,size=1m sh -c 'echo hi > /scratch/f && grep " /scratch " /proc/mounts' > /mounts
`
	files, _ := mustBuild(t, st, base, writeContext(t, nil), df, build.Options{})
	if m := files["mounts"].content; !strings.Contains(m, "tmpfs /scratch tmpfs") || !strings.Contains(m, "size=1024k") {
		t.Errorf("/proc/mounts line for the tmpfs = %q, want a 1 MiB tmpfs", m)
	}
	checkAbsent(t, files, "scratch")
}

const secretValue = "s3cr3t-Value-7f1c9a"

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// allEvents records every event as text, to search it for a secret.
type allEvents struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (e *allEvents) Event(ev solver.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(&e.buf, "%+v %s %s %v\n", ev, ev.Name, ev.Data, ev.Err)
}

func TestRunMountSecret(t *testing.T) {
	base := busyboxBase(t)
	root := t.TempDir()
	st := openState(t, root)
	secretFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secretFile, []byte(secretValue), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BUILDER_TEST_SECRET", secretValue+"-env")
	df := `FROM {{BASE}}
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /tok.sha
RUN --mount=type=secret,id=tok,target=/etc/tok,mode=0440,uid=1000,gid=1001 stat -c '%a %u %g' /etc/tok > /tok.stat
ENV TOKEN=not-the-secret
RUN --mount=type=secret,id=envtok,env=TOKEN sh -c 'printf %s "$TOKEN" | sha256sum | cut -d" " -f1; test -e /run/secrets/envtok && echo file || echo nofile' > /env.sha
RUN --mount=type=secret,id=missing sh -c 'test -e /run/secrets/missing && echo present || echo skipped' > /missing
RUN --mount=type=secret,id=tok,required cat /run/secrets/tok > /dev/null && echo ok > /required
`
	ev := &allEvents{}
	opts := build.Options{
		ContextDir: writeContext(t, nil), Dockerfile: []byte(strings.ReplaceAll(df, "{{BASE}}", base)),
		DockerfileName: "Dockerfile", Progress: ev,
		Secrets: map[string]build.Secret{"tok": {File: secretFile}, "envtok": {Env: "BUILDER_TEST_SECRET"}},
	}
	res, err := st.Build(t.Context(), opts)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.buf.String())
	}
	img, err := exporter.V1Image(st.Content, res.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := imageFiles(t, layers[1:])
	checkContent(t, files, "tok.sha", sha256Hex(secretValue))
	checkContent(t, files, "tok.stat", "440 1000 1001")
	checkContent(t, files, "env.sha", sha256Hex(secretValue+"-env")+"\nnofile")
	checkContent(t, files, "missing", "skipped")
	checkContent(t, files, "required", "ok")
	checkAbsent(t, files, "run/secrets", "etc/tok")

	// The value is nowhere: not in a layer, the config and history, a
	// blob, any file of the state dir (meta.db included), or an event.
	var where []string
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(b, []byte(secretValue)) {
			where = append(where, fmt.Sprintf("layer %d", i))
		}
	}
	if strings.Contains(string(res.Config), secretValue) {
		where = append(where, "config")
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if bytes.Contains(b, []byte(secretValue)) {
			where = append(where, p)
		}
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			if u, _ := io.ReadAll(zr); bytes.Contains(u, []byte(secretValue)) {
				where = append(where, p+" (gunzipped)")
			}
		}
		return nil
	})
	if strings.Contains(ev.buf.String(), secretValue) {
		where = append(where, "progress events")
	}
	if len(where) > 0 {
		t.Errorf("the secret's value is in %v", where)
	}

	// A required secret that was not given fails the build, naming the line.
	df = "FROM {{BASE}}\nRUN --mount=type=secret,id=nothere,required true\n"
	_, _, _, err = runBuild(t, st, base, writeContext(t, nil), df, build.Options{})
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:2") || !strings.Contains(err.Error(), "secret nothere is required") {
		t.Errorf("build with a missing required secret: err = %v, want one naming Dockerfile:2 and the secret", err)
	}
}

func TestRunMountSSH(t *testing.T) {
	base := busyboxBase(t)
	sock := testutil.StartSSHAgent(t, "builder-test-key")
	st := openState(t, t.TempDir())
	ctx, sshAdd := testutil.SSHAddContext(t)
	df := `FROM {{BASE}}
RUN echo 'app:x:1000:1000::/:/bin/sh' >> /etc/passwd
RUN --mount=type=bind,source=sshroot,target=/sshroot --mount=type=ssh ` + sshAdd + ` -l > /keys; echo "$SSH_AUTH_SOCK" > /sock
RUN --mount=type=bind,source=sshroot,target=/sshroot --mount=type=ssh,id=other,target=/agent.sock,uid=1000,mode=0600 sh -c 'stat -c "%u %a" /agent.sock; SSH_AUTH_SOCK=/agent.sock su app -c "` + sshAdd + ` -l"' > /other
RUN --mount=type=ssh,id=absent sh -c 'test -e /run/buildkit/ssh_agent.0 && echo present || echo skipped' > /absent
`
	files, _ := mustBuild(t, st, base, ctx, df, build.Options{SSH: map[string]string{"default": sock, "other": sock}})
	if k := files["keys"].content; !strings.Contains(k, "builder-test-key") {
		t.Errorf("ssh-add -l in the build printed %q, want the agent's key", k)
	}
	checkContent(t, files, "sock", "/run/buildkit/ssh_agent.0")
	if o := files["other"].content; !strings.HasPrefix(o, "1000 600\n") || !strings.Contains(o, "builder-test-key") {
		t.Errorf("ssh mount with uid and mode, used by uid 1000: %q", o)
	}
	checkContent(t, files, "absent", "skipped")
	checkAbsent(t, files, "run/buildkit", "agent.sock", "sshroot")

	df = "FROM {{BASE}}\nRUN --mount=type=ssh,required true\n"
	if _, _, _, err := runBuild(t, st, base, ctx, df, build.Options{}); err == nil || !strings.Contains(err.Error(), "Dockerfile:2") {
		t.Errorf("build with a missing required ssh agent: err = %v, want one naming Dockerfile:2", err)
	}
}

func TestRunSecurityInsecure(t *testing.T) {
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	df := `FROM {{BASE}}
RUN --security=insecure sh -c 'grep CapEff /proc/self/status; grep " /proc/keys " /proc/mounts || echo unmasked' > /insecure
RUN sh -c 'grep CapEff /proc/self/status; grep -q " /proc/keys " /proc/mounts && echo masked' > /sandbox
`
	ctx := writeContext(t, nil)
	_, _, _, err := runBuild(t, st, base, ctx, df, build.Options{})
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:2") || !strings.Contains(err.Error(), "--allow security.insecure") {
		t.Fatalf("insecure step without --allow: err = %v, want one naming Dockerfile:2 and --allow security.insecure", err)
	}
	files, _ := mustBuild(t, st, base, ctx, df, build.Options{Allow: []string{build.EntitlementInsecure}})
	capEff := func(s string) uint64 {
		var v uint64
		for _, line := range strings.Split(s, "\n") {
			if rest, ok := strings.CutPrefix(line, "CapEff:"); ok {
				fmt.Sscanf(strings.TrimSpace(rest), "%x", &v)
			}
		}
		return v
	}
	const capSysAdmin = 21
	if c := capEff(files["insecure"].content); c&(1<<capSysAdmin) == 0 || !strings.Contains(files["insecure"].content, "unmasked") {
		t.Errorf("insecure step: %q, want CAP_SYS_ADMIN and an unmasked /proc/keys", files["insecure"].content)
	}
	if c := capEff(files["sandbox"].content); c&(1<<capSysAdmin) != 0 || !strings.Contains(files["sandbox"].content, "masked") {
		t.Errorf("sandboxed step: %q, want no CAP_SYS_ADMIN and a masked /proc/keys", files["sandbox"].content)
	}
}
