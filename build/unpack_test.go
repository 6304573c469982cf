package build_test

import (
	"archive/tar"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAddUnpack builds ADD --unpack (Dockerfile 1.17): --unpack=true
// extracts a downloaded archive into the destination, a download is kept
// as a file without it, --unpack=false keeps a local archive as a file,
// and a local archive is still unpacked by default.
func TestAddUnpack(t *testing.T) {
	base := busyboxBase(t)
	remote := compressAs(t, "gz", addTar(t, "remote"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/dl/remote.tar.gz":
			w.Write(remote)
		case "/dl/notes.txt":
			w.Write([]byte("not an archive\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	local := string(compressAs(t, "gz", addTar(t, "local")))
	ctxDir := writeContext(t, map[string]string{"local.tar.gz": local})
	df := `FROM {{BASE}}
ADD --unpack=true ` + srv.URL + `/dl/remote.tar.gz /opt/
ADD --unpack=true ` + srv.URL + `/dl/notes.txt /notes/
ADD ` + srv.URL + `/dl/remote.tar.gz /kept/
ADD --unpack=false local.tar.gz /local-kept/
ADD local.tar.gz /local-unpacked/
`
	st := openState(t, t.TempDir())
	got, _, err := addBuild(t, st, base, ctxDir, df)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	checkFiles(t, got, []wantFile{
		{path: "opt/remote/data.txt", content: "remote", mode: 0o640, uid: 1000, gid: 1000},
		{path: "opt/remote/link", mode: 0o777, link: "data.txt", typ: tar.TypeSymlink},
		{path: "notes/notes.txt", content: "not an archive\n", mode: 0o600},
		{path: "kept/remote.tar.gz", content: string(remote), mode: 0o600},
		{path: "local-kept/local.tar.gz", content: local, mode: 0o644},
		{path: "local-unpacked/local/data.txt", content: "local", mode: 0o640, uid: 1000, gid: 1000},
	})
	for _, p := range []string{"opt/remote.tar.gz", "local-kept/local/data.txt"} {
		if _, ok := got[p]; ok {
			t.Errorf("image has %s", p)
		}
	}
	checkRebuildCached(t, st, base, ctxDir, df)
}
