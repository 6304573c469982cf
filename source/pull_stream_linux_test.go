package source_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/faultproxy"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/internal/testutil/statedir"
	"github.com/builder-dev/builder/source"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerTar is a tar of files of random bytes (incompressible, so the gzip
// blob is as large as the tar): f0 ... f(n-1), each of size bytes.
func layerTar(t *testing.T, n, size int) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, size)
	for i := range n {
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d", i), Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	return b.Bytes()
}

// TestPullStreamFaults pulls a one-layer image (a 3 MiB gzip blob) through
// faults that cut, restart or corrupt the download, with the layer
// unpacked as it downloads: a resumed download streams on, a restarted one
// falls back to the stored blob, and both give the layer's files; a blob
// corrupted on every try fails the pull and leaves no snapshot, no layer
// record and no blob behind.
func TestPullStreamFaults(t *testing.T) {
	testutil.RequiresRoot(t)
	upstream := testutil.DistributionRegistry(t, faultUser, faultPass)
	basic := &authn.Basic{Username: faultUser, Password: faultPass}
	tarBytes := layerTar(t, 12, 256<<10)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tarBytes)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	testutil.PushImage(t, img, upstream+"/app:1", remote.WithAuth(basic))
	blobSize, err := layer.Size()
	if err != nil {
		t.Fatal(err)
	}
	diffID, err := layer.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	proxy := faultproxy.New(upstream)
	t.Cleanup(proxy.Close)

	tests := []struct {
		name    string
		fault   faultproxy.Fault
		wantErr string
	}{
		{"reset every 700 KB", faultproxy.Fault{Kind: faultproxy.Reset, After: 700 << 10, Path: "/blobs/"}, ""},
		{"corrupt once", faultproxy.Fault{Kind: faultproxy.Corrupt, After: 1 << 20, Path: "/blobs/", Times: 1}, ""},
		{"corrupt always", faultproxy.Fault{Kind: faultproxy.Corrupt, After: 1 << 20, Path: "/blobs/"}, "digest mismatch"},
		// Corrupted at its very end, the blob is found bad only after its
		// snapshot was unpacked and committed: that snapshot must go, and
		// once the layer is unpacked again from a good download.
		{"corrupt end once", faultproxy.Fault{Kind: faultproxy.Corrupt, After: blobSize - 2, Path: "/blobs/", Times: 1}, ""},
		{"corrupt end always", faultproxy.Fault{Kind: faultproxy.Corrupt, After: blobSize - 2, Path: "/blobs/"}, "digest mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db, store, snaps := statedir.Open(t, dir)
			// Blob requests only: the config must arrive whole.
			tt.fault.Method = "GET"
			regs := &source.Registries{Content: store, Keychain: staticKeychain{basic},
				Retry: &source.RetryPolicy{Backoff: 10 * time.Millisecond, Attempts: 4}}
			plat := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
			resolved, err := regs.Resolve(t.Context(), proxy.Addr+"/app:1", plat)
			if err != nil {
				t.Fatal(err)
			}
			proxy.Clear()
			proxy.Add(tt.fault)
			proxy.ResetCounters()
			p := &source.Puller{Registries: regs, DB: db, Snapshots: snaps}
			var log strings.Builder
			top, err := p.PullLog(t.Context(), resolved, &log)
			t.Logf("%d faults: %s%v", proxy.Injected(), log.String(), err)
			if proxy.Injected() == 0 {
				t.Error("no fault was injected")
			}
			if tt.wantErr != "" {
				checkErrorSays(t, err, tt.wantErr)
				if left := snapshotsIn(t, snaps.Root()); len(left) > 0 {
					t.Errorf("snapshots left behind: %v", left)
				}
				if store.Exists(resolved.Manifest.Layers[0].Digest) {
					t.Error("the corrupted blob was stored")
				}
				if id, err := db.LayerSnapshot(t.Context(), digest.Digest(diffID.String())); err == nil {
					t.Errorf("a layer record (snapshot %s) was left behind", id)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"f0", "f11"} {
				got, err := os.ReadFile(filepath.Join(snaps.FS(top), f))
				if err != nil || len(got) != 256<<10 {
					t.Errorf("%s: %d bytes, %v", f, len(got), err)
				}
			}
			if left := snapshotsIn(t, snaps.Root()); len(left) != 1 || left[0] != top {
				t.Errorf("snapshots = %v, want only %s", left, top)
			}
		})
	}
}

// snapshotsIn lists the snapshot directories under root (not the hidden
// ones of removals in progress, nor the shared empty one).
func snapshotsIn(t *testing.T, root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && e.Name() != "empty" {
			ids = append(ids, e.Name())
		}
	}
	return ids
}
