package build_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
)

var tarTime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

// TestAddLocalArchives builds ADD of each kind of local archive, a
// gzipped text file (copied, not unpacked) and an archive with --chown.
func TestAddLocalArchives(t *testing.T) {
	base := busyboxBase(t)
	files := map[string]string{}
	kinds := []string{"tar", "gz", "bz2", "xz", "zst"}
	for _, k := range kinds {
		name := "a.tar"
		if k != "tar" {
			name += "." + k
		}
		files[name] = string(compressAs(t, k, addTar(t, k)))
	}
	files["notes.txt.gz"] = string(compressAs(t, "gz", []byte("not a tar\n")))
	files["owned.tar.gz"] = string(compressAs(t, "gz", addTar(t, "owned")))
	ctxDir := writeContext(t, files)
	df := `FROM {{BASE}}
RUN echo 'app:x:1500:1600::/:/bin/sh' >> /etc/passwd && echo 'app:x:1600:' >> /etc/group
ADD a.tar a.tar.gz /out/
ADD a.tar.bz2 a.tar.xz /out/
ADD a.tar.zst /out
ADD notes.txt.gz /notes/
ADD --chown=app owned.tar.gz /
`
	root := t.TempDir()
	st := openState(t, root)
	got, _, err := addBuild(t, st, base, ctxDir, df)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	var want []wantFile
	for _, k := range kinds {
		want = append(want,
			wantFile{path: "out/" + k + "/", typ: tar.TypeDir, mode: 0o750},
			wantFile{path: "out/" + k + "/data.txt", content: k, mode: 0o640, uid: 1000, gid: 1000},
			wantFile{path: "out/" + k + "/link", typ: tar.TypeSymlink, link: "data.txt", mode: 0o777},
		)
	}
	want = append(want,
		wantFile{path: "notes/notes.txt.gz", content: files["notes.txt.gz"], mode: 0o644},
		wantFile{path: "owned/", typ: tar.TypeDir, mode: 0o750, uid: 1500, gid: 1600},
		wantFile{path: "owned/data.txt", content: "owned", mode: 0o640, uid: 1500, gid: 1600},
	)
	checkFiles(t, got, want)
	for _, k := range kinds {
		f := got["out/"+k+"/data.txt"]
		if f.hdr != nil && !f.hdr.ModTime.Equal(tarTime) {
			t.Errorf("out/%s/data.txt mtime = %v, want the archive's %v", k, f.hdr.ModTime, tarTime)
		}
		// The hard link stays a hard link in the layer.
		if h, ok := got["out/"+k+"/hard"]; !ok || (h.hdr.Typeflag != tar.TypeLink && h.content != k) {
			t.Errorf("out/%s/hard is missing or not a link of data.txt: %+v", k, h.hdr)
		}
	}
	checkNothingLeft(t, root)
	checkRebuildCached(t, st, base, ctxDir, df)
}

// TestAddURL builds ADD of URLs served on 127.0.0.1: with and without
// --checksum, an archive (not unpacked), Last-Modified as the mtime, and
// the errors of a wrong checksum, a 404 and an unreachable host.
func TestAddURL(t *testing.T) {
	base := busyboxBase(t)
	lastModified := time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC)
	archive := compressAs(t, "gz", addTar(t, "remote"))
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch r.URL.Path {
		case "/files/hello.txt":
			w.Header().Set("Last-Modified", lastModified.Format(http.TimeFormat))
			io.WriteString(w, "hello from http\n")
		case "/nodate":
			io.WriteString(w, "no date\n")
		case "/odd[1]*.txt":
			io.WriteString(w, "odd\n")
		case "/dl/archive.tar.gz":
			w.Write(archive)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	sum := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("hello from http\n")))
	ctxDir := writeContext(t, map[string]string{"local.txt": "local"})
	df := `FROM {{BASE}}
ADD ` + srv.URL + `/files/hello.txt /dl/
ADD --checksum=` + sum + ` ` + srv.URL + `/files/hello.txt /checked.txt
ADD --chown=1:2 --chmod=644 ` + srv.URL + `/nodate /nodate.txt
ADD ` + srv.URL + `/dl/archive.tar.gz local.txt /mixed/
ADD ` + srv.URL + `/odd[1]*.txt /odd/
`
	root := t.TempDir()
	st := openState(t, root)
	got, _, err := addBuild(t, st, base, ctxDir, df)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	checkFiles(t, got, []wantFile{
		{path: "dl/hello.txt", content: "hello from http\n", mode: 0o600},
		{path: "checked.txt", content: "hello from http\n", mode: 0o600},
		{path: "nodate.txt", content: "no date\n", mode: 0o644, uid: 1, gid: 2},
		{path: "mixed/archive.tar.gz", content: string(archive), mode: 0o600},
		{path: "mixed/local.txt", content: "local", mode: 0o644},
		{path: "odd/odd[1]*.txt", content: "odd\n", mode: 0o600},
	})
	if f, ok := got["dl/hello.txt"]; ok && !f.hdr.ModTime.Equal(lastModified) {
		t.Errorf("dl/hello.txt mtime = %v, want Last-Modified %v", f.hdr.ModTime, lastModified)
	}
	if f, ok := got["nodate.txt"]; ok && f.hdr.ModTime.Unix() != 0 {
		t.Errorf("nodate.txt mtime = %v, want the Unix epoch", f.hdr.ModTime)
	}
	if _, ok := got["mixed/remote/data.txt"]; ok {
		t.Error("a remote archive was unpacked")
	}
	checkNothingLeft(t, root)

	// Again: all cached. URLs without a checksum are fetched again to
	// see whether they changed; the one with a checksum is not.
	before := requests.Load()
	checkRebuildCached(t, st, base, ctxDir, df)
	if n := requests.Load() - before; n != 4 {
		t.Errorf("cached rebuild made %d requests, want 4 (the URLs without --checksum)", n)
	}

	// With only a checksummed URL, a cached rebuild makes no request.
	dfSum := "FROM {{BASE}}\nADD --checksum=" + sum + " " + srv.URL + "/files/hello.txt /checked.txt\n"
	if _, _, err := addBuild(t, st, base, ctxDir, dfSum); err != nil {
		t.Fatal(err)
	}
	before = requests.Load()
	checkRebuildCached(t, st, base, ctxDir, dfSum)
	if n := requests.Load() - before; n != 0 {
		t.Errorf("cached rebuild with --checksum made %d requests, want 0", n)
	}

	// Errors name the Dockerfile line and the URL.
	bad := "sha256:" + strings.Repeat("0", 64)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	errTests := []struct {
		name, dockerfile string
		want             []string
	}{
		{"wrong checksum", "FROM {{BASE}}\nADD --checksum=" + bad + " " + srv.URL + "/nodate /x\n",
			[]string{"Dockerfile:2", "ADD " + srv.URL + "/nodate", "digest mismatch", bad, fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("no date\n")))}},
		{"not found", "FROM {{BASE}}\nADD " + srv.URL + "/missing /x\n", []string{"Dockerfile:2", "ADD " + srv.URL + "/missing", "404 Not Found"}},
		{"unreachable", "FROM {{BASE}}\nADD " + closedURL + "/x /x\n", []string{"Dockerfile:2", "ADD " + closedURL + "/x", "connection refused"}},
		{"checksum of a local file", "FROM {{BASE}}\nADD --checksum=" + sum + " local.txt /x\n", []string{"Dockerfile:2", "--checksum requires HTTP(S) or Git sources"}},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := addBuild(t, st, base, ctxDir, tt.dockerfile)
			if err == nil {
				t.Fatal("build succeeded")
			}
			t.Logf("error: %v", err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			checkNothingLeft(t, root)
		})
	}
}

// gitDaemon makes a repository (tag v1 and a later commit on main, with a
// subdirectory) and serves it read-only on git://127.0.0.1. It returns the
// repository's URL and the commits of v1 and main.
func gitDaemon(t *testing.T) (url, v1, main string) {
	t.Helper()
	gitBin := testutil.RequireTool(t, "git", "git")
	work := t.TempDir()
	serve := t.TempDir()
	run := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command(gitBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	write := func(name, content string, mode os.FileMode) {
		p := filepath.Join(work, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	run(work, "init", "-q", "-b", "main")
	write("README", "v1\n", 0o644)
	write("sub/tool.sh", "#!/bin/sh\n", 0o755)
	run(work, "add", "-A")
	run(work, "commit", "-q", "-m", "one")
	run(work, "tag", "-a", "-m", "v1", "v1")
	v1 = run(work, "rev-parse", "HEAD")
	write("README", "main\n", 0o644)
	run(work, "commit", "-q", "-am", "two")
	main = run(work, "rev-parse", "HEAD")
	run(serve, "clone", "-q", "--bare", work, "repo.git")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	daemon := exec.Command(gitBin, "daemon", "--export-all", "--reuseaddr", "--informative-errors",
		"--base-path="+serve, "--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), serve)
	// Its own process group, so that the upload-pack children it forks
	// go with it; its output is not the test's.
	daemon.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-daemon.Process.Pid, syscall.SIGKILL)
		daemon.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("git daemon did not start listening on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "git://" + addr + "/repo.git", v1, main
}

// TestAddGit builds ADD of a git repository served by git daemon on
// loopback: a tag, a branch with --keep-git-dir, a subdirectory, and
// --checksum right and wrong.
func TestAddGit(t *testing.T) {
	base := busyboxBase(t)
	repo, v1, main := gitDaemon(t)
	ctxDir := writeContext(t, map[string]string{"local.txt": "local"})
	df := `FROM {{BASE}}
ADD ` + repo + `#v1 /v1
ADD --keep-git-dir=true ` + repo + `#main /kept/
ADD ` + repo + `#main:sub /sub
ADD --checksum=` + v1 + ` ` + repo + `#v1 /checked
`
	root := t.TempDir()
	st := openState(t, root)
	got, _, err := addBuild(t, st, base, ctxDir, df)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	checkFiles(t, got, []wantFile{
		{path: "v1/README", content: "v1\n", mode: 0o644},
		{path: "v1/sub/tool.sh", content: "#!/bin/sh\n", mode: 0o755},
		{path: "kept/README", content: "main\n", mode: 0o644},
		{path: "sub/tool.sh", content: "#!/bin/sh\n", mode: 0o755},
		{path: "checked/README", content: "v1\n", mode: 0o644},
	})
	for p := range got {
		if strings.HasPrefix(p, "v1/.git") || strings.HasPrefix(p, "sub/README") || strings.HasPrefix(p, "checked/.git") {
			t.Errorf("image has %s, which the checkout should leave out", p)
		}
	}
	head, ok := got["kept/.git/HEAD"]
	if !ok || !strings.Contains(head.content, "refs/heads/main") {
		t.Errorf("kept/.git/HEAD = %q (present %v), want a checkout of branch main", head.content, ok)
	}
	checkNothingLeft(t, root)
	checkRebuildCached(t, st, base, ctxDir, df)

	t.Run("wrong checksum", func(t *testing.T) {
		_, _, err := addBuild(t, st, base, ctxDir, "FROM {{BASE}}\nADD --checksum="+v1+" "+repo+"#main /x\n")
		t.Logf("error: %v", err)
		if err == nil || !strings.Contains(err.Error(), "Dockerfile:2") || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), main) {
			t.Errorf("build error = %v, want a checksum mismatch naming line 2 and commit %s", err, main)
		}
	})
	t.Run("unknown ref", func(t *testing.T) {
		_, _, err := addBuild(t, st, base, ctxDir, "FROM {{BASE}}\nADD "+repo+"#nope /x\n")
		t.Logf("error: %v", err)
		if err == nil || !strings.Contains(err.Error(), "ADD "+repo+"#nope") || !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("build error = %v, want one naming the source and the ref", err)
		}
	})
}

// TestAddArchiveConfined builds ADD of the review's etclink.tar, whose
// symlinks point at the image's /etc and /bin with files written through
// them: everything lands below the destination, as with BuildKit, and the
// image's /etc/passwd and /bin/ls are untouched.
func TestAddArchiveConfined(t *testing.T) {
	base := busyboxBase(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc", Mode: 0o777},
		{Name: "l/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6},
		{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "../bin", Mode: 0o777},
		{Name: "up/ls", Typeflag: tar.TypeReg, Mode: 0o755, Size: 6},
	} {
		h.ModTime = tarTime
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, "pwned\n")
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ctxDir := writeContext(t, map[string]string{"etclink.tar": buf.String()})
	df := `FROM {{BASE}}
ADD etclink.tar /a/
RUN grep -q '^root:' /etc/passwd && test "$(cat /a/etc/passwd)" = pwned && /bin/ls /a/bin/ls
`
	st := openState(t, t.TempDir())
	got, _, err := addBuild(t, st, base, ctxDir, df)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	for _, p := range []string{"etc/passwd", "bin/ls"} {
		if _, ok := got[p]; ok {
			t.Errorf("the build changed the image's /%s", p)
		}
	}
	checkFiles(t, got, []wantFile{
		{path: "a/l", typ: tar.TypeSymlink, link: "/etc", mode: 0o777},
		{path: "a/etc/passwd", content: "pwned\n", mode: 0o644},
		{path: "a/up", typ: tar.TypeSymlink, link: "../bin", mode: 0o777},
		{path: "a/bin/ls", content: "pwned\n", mode: 0o755},
	})
}
