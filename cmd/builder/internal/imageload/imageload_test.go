package imageload

import (
	"archive/tar"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerLoad talks to a stand-in Engine API on a unix socket: the
// archive is posted to /images/load as a tar, and an error in the answer's
// JSON stream is an error.
func TestDockerLoad(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "image.tar")
	f, _ := os.Create(archive)
	tw := tar.NewWriter(f)
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: 2})
	tw.Write([]byte("[]"))
	tw.Close()
	f.Close()

	sock := filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	answer := `{"stream":"Loaded image: x:1\n"}`
	var got []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		names := []string{r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type")}
		tr := tar.NewReader(r.Body)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			names = append(names, h.Name)
		}
		got = names
		io.WriteString(w, answer)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	if err := DockerLoad(context.Background(), "unix://"+sock, archive); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "POST /images/load application/x-tar|manifest.json" {
		t.Errorf("the Engine API got %q", got)
	}
	answer = `{"errorDetail":{"message":"no space"},"error":"no space"}`
	if err := DockerLoad(context.Background(), "unix://"+sock, archive); err == nil || !strings.Contains(err.Error(), "no space") {
		t.Errorf("a failed load: %v", err)
	}
	if err := DockerLoad(context.Background(), "ssh://host", archive); err == nil {
		t.Error("ssh:// DOCKER_HOST: no error")
	}
}
