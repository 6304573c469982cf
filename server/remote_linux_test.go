package server

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/progress"
	"github.com/builder-dev/builder/server/api"
)

// TestRemoteSyncsWhatDockerignoreKeeps: a large file .dockerignore excludes
// is neither sent nor in the server's context, and the client remembers
// the digests of what it hashed, so a rebuild does not read them again.
func TestRemoteSyncsWhatDockerignoreKeeps(t *testing.T) {
	var seen []string
	srv, err := New(t.TempDir(), 0, Policy{}, func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error) {
		seen = nil
		filepath.WalkDir(contextDir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(contextDir, p)
				seen = append(seen, rel)
			}
			return nil
		})
		return &api.Result{Digest: "sha256:" + strings.Repeat("2", 64)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	host := serveUnix(t, srv)

	ctxDir := t.TempDir()
	files := map[string]string{".dockerignore": "big.bin\nlogs/\n", "keep.txt": "kept", "logs/a.log": "noise"}
	for name, data := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(ctxDir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(ctxDir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "big.bin"), bytes.Repeat([]byte{7}, 32<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	sums := t.TempDir()
	run := func() string {
		var stderr bytes.Buffer
		printer, err := progress.New(&stderr, "plain")
		if err != nil {
			t.Fatal(err)
		}
		err = RunRemote(t.Context(), Remote{Hosts: []string{host}, ContextDir: ctxDir, Request: &api.BuildRequest{}, Printer: printer, SumsDir: sums}, &bytes.Buffer{}, &stderr)
		if err != nil {
			t.Fatalf("remote build: %v\n%s", err, stderr.String())
		}
		return stderr.String()
	}
	want := len(files[".dockerignore"]) + len(files["keep.txt"])
	if out := run(); !strings.Contains(out, "context sync: uploaded 2 files, "+strconv.Itoa(want)+" bytes") {
		t.Errorf("first sync, want 2 files of %d bytes (big.bin and logs/ ignored):\n%s", want, out)
	}
	if strings.Join(seen, ",") != ".dockerignore,keep.txt" {
		t.Errorf("server's context holds %v, want .dockerignore, keep.txt", seen)
	}

	// Digests of files changed within 2 s are not remembered (they could
	// change again unseen); once settled, a rebuild stores them.
	time.Sleep(2100 * time.Millisecond)
	run()
	db, err := cache.Open(filepath.Join(sums, "filesums.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var paths [][]byte
	var keys []cache.FileKey
	for _, name := range []string{"keep.txt", "big.bin"} {
		p := filepath.Join(ctxDir, name)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		paths, keys = append(paths, []byte(p)), append(keys, statKey(fi))
	}
	_, ok := db.FileSums().Lookup(paths, keys)
	if !ok[0] {
		t.Error("the client's digest cache lacks keep.txt after a settled rebuild")
	}
	if ok[1] {
		t.Error("the client hashed big.bin, which .dockerignore excludes")
	}
}

// statKey is the key localctx remembers a digest under.
func statKey(fi os.FileInfo) cache.FileKey {
	st := fi.Sys().(*syscall.Stat_t)
	return cache.FileKey{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano(), CtimeNs: st.Ctim.Nano(), Ino: st.Ino}
}
