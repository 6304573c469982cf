package testutil

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// InProcessRegistry serves go-containerregistry's in-memory registry on a
// loopback port until the test ends, and returns its "127.0.0.1:PORT".
// It needs no credentials; clients use plain HTTP for loopback addresses.
func InProcessRegistry(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithReferrersSupport(true),
	))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// RequireTool returns the path of an executable, or ends the test: with
// t.Skip when not in CI, with t.Fatal in CI (CI set in the environment),
// naming the Debian package that provides it.
func RequireTool(t testing.TB, tool, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	Missing(t, fmt.Sprintf("%s not found (%v); install it with `apt-get install %s`", tool, err, debianPackage))
	return ""
}

// DistributionRegistry starts Debian's docker-registry (the CNCF
// distribution registry) on a free 127.0.0.1 port with filesystem storage in
// a temp dir and htpasswd basic auth for user:pass, and returns its
// "127.0.0.1:PORT" once /v2/ answers. The registry stops when the test ends;
// if the test failed, its log is added to the test log.
//
// Without docker-registry or htpasswd the test skips, or fails in CI.
func DistributionRegistry(t testing.TB, user, pass string) string {
	t.Helper()
	bin := RequireTool(t, "docker-registry", "docker-registry")
	htpasswd := RequireTool(t, "htpasswd", "apache2-utils")
	if user == "" || strings.Contains(user, ":") {
		t.Fatalf("DistributionRegistry: invalid user name %q", user)
	}

	dir := t.TempDir()
	cmd := exec.Command(htpasswd, "-Bbn", user, pass)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	entry, err := cmd.Output()
	if err != nil {
		t.Fatalf("htpasswd -Bbn %s: %v: %s", user, err, stderr.String())
	}
	htpasswdFile := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswdFile, bytes.TrimSpace(entry), 0o600); err != nil {
		t.Fatal(err)
	}
	storage := filepath.Join(dir, "storage")
	if err := os.Mkdir(storage, 0o700); err != nil {
		t.Fatal(err)
	}

	// The port is found free and then handed to the registry, so another
	// process may take it in between; retry with a new port when that happens.
	var lastLog string
	for attempt := range 3 {
		addr := freeLoopbackAddr(t)
		cfg := filepath.Join(dir, fmt.Sprintf("config-%d.yml", attempt))
		if err := os.WriteFile(cfg, []byte(distributionConfig(addr, storage, htpasswdFile)), 0o600); err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))
		ok, regLog := startDistribution(t, bin, cfg, addr, logPath)
		if ok {
			return addr
		}
		lastLog = regLog
		if !strings.Contains(regLog, "address already in use") {
			break
		}
	}
	t.Fatalf("docker-registry did not start; its log:\n%s", lastLog)
	return ""
}

// startDistribution runs one registry and waits until it answers. On
// success it registers the cleanup that stops it; otherwise it returns the
// log.
func startDistribution(t testing.TB, bin, cfg, addr, logPath string) (bool, string) {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	readLog := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}

	cmd := exec.Command(bin, "serve", cfg)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = registryEnv()
	setPdeathsig(cmd)
	// The death signal fires when the thread that started the registry
	// exits, and the builder discards threads on purpose (private mount
	// namespaces), so start and wait from one goroutine locked to its thread.
	exited := make(chan error, 1)
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}

	url := "http://" + addr + "/v2/"
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-exited:
			return false, fmt.Sprintf("(exited: %v)\n%s", err, readLog())
		default:
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			// 401 is the expected answer of a registry with auth.
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return false, "(did not answer on " + url + " within 20s)\n" + readLog()
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("docker-registry log (%s):\n%s", addr, readLog())
		}
	})
	return true, ""
}

func distributionConfig(addr, storage, htpasswdFile string) string {
	secret := make([]byte, 16)
	rand.Read(secret)
	return fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: builder-test
    path: %s
`, strconv.Quote(storage), addr, hex.EncodeToString(secret), strconv.Quote(htpasswdFile))
}

// registryEnv is the environment without REGISTRY_* variables, which would
// override the generated configuration.
func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			env = append(env, kv)
		}
	}
	return env
}

func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// DockerConfig writes a docker config.json with basic auth for user:pass on
// host into a new temp dir and returns the dir, for DOCKER_CONFIG.
func DockerConfig(t testing.TB, host, user, pass string) string {
	t.Helper()
	type authEntry struct {
		Auth string `json:"auth"`
	}
	cfg := struct {
		Auths map[string]authEntry `json:"auths"`
	}{Auths: map[string]authEntry{
		host: {Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))},
	}}
	b, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// PushImage pushes img to ref (e.g. InProcessRegistry(t)+"/busybox:latest")
// or fails the test. opts add to remote.WithContext(t.Context()), e.g. an
// authenticator.
func PushImage(t testing.TB, img v1.Image, ref string, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("PushImage: %v", err)
	}
	opts = append([]remote.Option{remote.WithContext(t.Context())}, opts...)
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}
