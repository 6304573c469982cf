package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s
}

// ingestFiles lists what is left in ingest/.
func ingestFiles(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Root(), ingestDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func blobs(t *testing.T, s *Store) map[digest.Digest]int64 {
	t.Helper()
	got := map[digest.Digest]int64{}
	if err := s.Walk(func(d digest.Digest, size int64) error {
		got[d] = size
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return got
}

func TestNewStoreLayout(t *testing.T) {
	s := newStore(t)
	for _, dir := range []string{"blobs/sha256", "ingest"} {
		fi, err := os.Stat(filepath.Join(s.Root(), dir))
		if err != nil || !fi.IsDir() {
			t.Errorf("NewStore did not create %s: %v", dir, err)
		}
	}
	d := digest.FromString("x")
	if got, want := s.Path(d), filepath.Join(s.Root(), "blobs", "sha256", d.Encoded()); got != want {
		t.Errorf("Path(%s) = %s, want %s", d, got, want)
	}
}

func TestCommit(t *testing.T) {
	data := []byte("hello, content store\n")
	good := digest.FromBytes(data)
	other := digest.FromString("something else")
	for _, tc := range []struct {
		name         string
		expected     digest.Digest
		expectedSize int64
		wantErr      error  // errors.Is target; nil means success
		wantErrText  string // substring, when wantErr is nil but an error is expected
	}{
		{name: "compute digest and size", expected: "", expectedSize: -1},
		{name: "expected digest", expected: good, expectedSize: -1},
		{name: "expected digest and size", expected: good, expectedSize: int64(len(data))},
		{name: "expected size only", expected: "", expectedSize: int64(len(data))},
		{name: "digest mismatch", expected: other, expectedSize: -1, wantErr: ErrDigestMismatch},
		{name: "size mismatch", expected: good, expectedSize: int64(len(data)) + 1, wantErr: ErrSizeMismatch},
		{name: "size mismatch without digest", expected: "", expectedSize: 3, wantErr: ErrSizeMismatch},
		{name: "malformed digest", expected: "sha256:nothex", expectedSize: -1, wantErrText: "invalid digest"},
		{name: "other algorithm", expected: digest.Digest("sha512:" + strings.Repeat("ab", 64)), expectedSize: -1, wantErrText: "sha512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			w, err := s.Writer(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			d, size, err := w.Commit(tc.expected, tc.expectedSize)
			failing := tc.wantErr != nil || tc.wantErrText != ""
			switch {
			case !failing && err != nil:
				t.Fatalf("Commit(%q, %d) = %v, want success", tc.expected, tc.expectedSize, err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("Commit(%q, %d) = %v, want error wrapping %v", tc.expected, tc.expectedSize, err, tc.wantErr)
			case tc.wantErrText != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErrText)):
				t.Fatalf("Commit(%q, %d) = %v, want error containing %q", tc.expected, tc.expectedSize, err, tc.wantErrText)
			}
			if left := ingestFiles(t, s); len(left) != 0 {
				t.Errorf("ingest files left after Commit: %v", left)
			}
			if failing {
				if got := blobs(t, s); len(got) != 0 {
					t.Errorf("failed Commit stored blobs: %v", got)
				}
				return
			}
			if d != good || size != int64(len(data)) {
				t.Errorf("Commit(%q, %d) = %s, %d, want %s, %d", tc.expected, tc.expectedSize, d, size, good, len(data))
			}
			got, err := s.ReadAll(good)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("ReadAll(%s) = %q, %v, want %q", good, got, err, data)
			}
			if _, err := w.Write([]byte("more")); err == nil {
				t.Error("Write after Commit succeeded")
			}
			if _, _, err := w.Commit("", -1); err == nil {
				t.Error("second Commit succeeded")
			}
		})
	}
}

func TestMissingBlob(t *testing.T) {
	s := newStore(t)
	d := digest.FromString("never stored")
	for name, fn := range map[string]func() error{
		"Info":    func() error { _, err := s.Info(d); return err },
		"Open":    func() error { _, err := s.Open(d); return err },
		"ReadAll": func() error { _, err := s.ReadAll(d); return err },
		"Delete":  func() error { return s.Delete(d) },
	} {
		err := fn()
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s(%s) = %v, want error wrapping fs.ErrNotExist", name, d, err)
		}
		if err != nil && !strings.Contains(err.Error(), d.String()) {
			t.Errorf("%s(%s) = %q, want the digest in the message", name, d, err)
		}
	}
	if s.Exists(d) {
		t.Errorf("Exists(%s) = true for a missing blob", d)
	}
}

func TestInvalidDigest(t *testing.T) {
	s := newStore(t)
	for _, d := range []digest.Digest{"", "sha256:../../etc/passwd", "md5:abc", "sha256:" + digest.Digest(strings.Repeat("z", 64))} {
		if _, err := s.Info(d); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Info(%q) = %v, want an invalid digest error", d, err)
		}
		if _, err := s.Open(d); err == nil {
			t.Errorf("Open(%q) succeeded", d)
		}
		if err := s.Delete(d); err == nil {
			t.Errorf("Delete(%q) succeeded", d)
		}
	}
}

func TestWriteBlobInfoDeleteWalk(t *testing.T) {
	s := newStore(t)
	want := map[digest.Digest]int64{}
	for i := range 5 {
		data := bytes.Repeat([]byte{byte('a' + i)}, 1000*i)
		d, size, err := s.WriteBlob(t.Context(), bytes.NewReader(data), "")
		if err != nil {
			t.Fatalf("WriteBlob: %v", err)
		}
		if d != digest.FromBytes(data) || size != int64(len(data)) {
			t.Fatalf("WriteBlob = %s, %d, want %s, %d", d, size, digest.FromBytes(data), len(data))
		}
		want[d] = size
		if got, err := s.Info(d); err != nil || got != size {
			t.Errorf("Info(%s) = %d, %v, want %d", d, got, err, size)
		}
	}
	// Files that are not blobs are ignored by Walk.
	if err := os.WriteFile(filepath.Join(s.Root(), "blobs", "sha256", "not-a-digest"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := blobs(t, s)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Walk = %v, want %v", got, want)
	}

	stop := errors.New("stop")
	calls := 0
	if err := s.Walk(func(digest.Digest, int64) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Walk with failing fn = %v after %d calls, want %v after 1", err, calls, stop)
	}

	for d := range want {
		if err := s.Delete(d); err != nil {
			t.Fatalf("Delete(%s): %v", d, err)
		}
		if s.Exists(d) {
			t.Errorf("blob %s exists after Delete", d)
		}
	}
	if got := blobs(t, s); len(got) != 0 {
		t.Errorf("Walk after deleting everything = %v", got)
	}
}

func TestWriteBlobExistingSkipsReader(t *testing.T) {
	s := newStore(t)
	d, err := s.WriteBytes(t.Context(), []byte("cached"))
	if err != nil {
		t.Fatal(err)
	}
	r := &countingReader{r: strings.NewReader("cached")}
	got, size, err := s.WriteBlob(t.Context(), r, d)
	if err != nil || got != d || size != 6 {
		t.Fatalf("WriteBlob(existing) = %s, %d, %v, want %s, 6", got, size, err, d)
	}
	if r.n != 0 {
		t.Errorf("WriteBlob read %d bytes of an existing blob", r.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestWriteBlobCanceled(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := s.WriteBlob(ctx, strings.NewReader("data"), ""); err == nil {
		t.Fatal("WriteBlob with a canceled context succeeded")
	}
	if left := ingestFiles(t, s); len(left) != 0 {
		t.Errorf("ingest files left: %v", left)
	}
}

func TestConcurrentWritesSameContent(t *testing.T) {
	s := newStore(t)
	data := bytes.Repeat([]byte("concurrent "), 100_000)
	want := digest.FromBytes(data)
	const writers = 16
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			expected := want
			if i%2 == 0 {
				expected = "" // half of them do not know the digest up front
			}
			d, size, err := s.WriteBlob(t.Context(), bytes.NewReader(data), expected)
			if err == nil && (d != want || size != int64(len(data))) {
				err = fmt.Errorf("WriteBlob = %s, %d, want %s, %d", d, size, want, len(data))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := blobs(t, s); len(got) != 1 || got[want] != int64(len(data)) {
		t.Errorf("blobs after concurrent writes = %v, want only %s", got, want)
	}
	if left := ingestFiles(t, s); len(left) != 0 {
		t.Errorf("ingest files left: %v", left)
	}
	if _, err := s.ReadAll(want); err != nil {
		t.Errorf("ReadAll: %v", err)
	}
}

func TestOpenVerifiesCorruptBlob(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(data []byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"extended", func(b []byte) []byte { return append(b, '!') }},
		{"emptied", func([]byte) []byte { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			data := bytes.Repeat([]byte("layer bytes "), 10_000)
			d, err := s.WriteBytes(t.Context(), data)
			if err != nil {
				t.Fatal(err)
			}
			p := s.Path(d)
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, tc.corrupt(bytes.Clone(data)), 0o644); err != nil {
				t.Fatal(err)
			}

			rc, err := s.Open(d)
			if err != nil {
				t.Fatalf("Open(%s): %v", d, err)
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("reading corrupt blob: %v, want error wrapping ErrDigestMismatch", err)
			}
			if _, err := s.ReadAll(d); !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("ReadAll(corrupt %s) = %v, want error wrapping ErrDigestMismatch", d, err)
			}
		})
	}
}

func TestOpenReadsInSmallPieces(t *testing.T) {
	s := newStore(t)
	data := []byte("read me one byte at a time")
	d, err := s.WriteBytes(t.Context(), data)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(io.LimitReader(oneByteReader{rc}, 1<<20))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("reading %s byte by byte = %q, %v, want %q", d, got, err, data)
	}
	// EOF stays EOF.
	if n, err := rc.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Errorf("Read after EOF = %d, %v, want 0, EOF", n, err)
	}
}

type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

func TestCloseRemovesIngest(t *testing.T) {
	s := newStore(t)
	w, err := s.Writer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	if w.Size() != 7 {
		t.Errorf("Size() = %d, want 7", w.Size())
	}
	// Until Commit, the data lives only in ingest/: a crash here leaves no blob.
	if left := ingestFiles(t, s); len(left) != 1 {
		t.Errorf("ingest files while writing = %v, want one", left)
	}
	if got := blobs(t, s); len(got) != 0 {
		t.Errorf("blobs before Commit = %v", got)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if left := ingestFiles(t, s); len(left) != 0 {
		t.Errorf("ingest files after Close = %v", left)
	}
	if _, _, err := w.Commit("", -1); err == nil {
		t.Error("Commit after Close succeeded")
	}
}

func TestCommitReplacesTruncatedBlob(t *testing.T) {
	s := newStore(t)
	data := []byte("complete content")
	d := digest.FromBytes(data)
	// A blob of the wrong size cannot be a finished write of d: replace it.
	if err := os.WriteFile(s.Path(d), data[:4], 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := s.Writer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(data)
	if _, _, err := w.Commit(d, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadAll(d); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadAll(%s) = %q, %v, want %q", d, got, err, data)
	}
}

func TestPruneIngest(t *testing.T) {
	s := newStore(t)
	old, err := s.Writer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	fresh, err := s.Writer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	past := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(old.f.Name(), past, past); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneIngest(24 * time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("PruneIngest(24h) = %d, %v, want 1", n, err)
	}
	if left := ingestFiles(t, s); len(left) != 1 || left[0] != filepath.Base(fresh.f.Name()) {
		t.Errorf("ingest files after prune = %v, want only %s", left, filepath.Base(fresh.f.Name()))
	}
}

// TestWriteBlobSized: content longer than the declared size is cut off one
// byte past it and refused; shorter or different content is refused; none
// of it is stored.
func TestWriteBlobSized(t *testing.T) {
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("ten bytes!")
	d := digest.FromBytes(data)
	endless := &countingZeros{}
	if err := s.WriteBlobSized(t.Context(), endless, d, int64(len(data))); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("endless body: %v, want a size mismatch", err)
	}
	if endless.n > int64(len(data))+1 {
		t.Errorf("read %d bytes of an endless body for a %d byte blob", endless.n, len(data))
	}
	if err := s.WriteBlobSized(t.Context(), bytes.NewReader(data[:5]), d, int64(len(data))); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("short body: %v, want a size mismatch", err)
	}
	if err := s.WriteBlobSized(t.Context(), bytes.NewReader([]byte("TEN BYTES!")), d, int64(len(data))); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("wrong body: %v, want a digest mismatch", err)
	}
	if s.Exists(d) {
		t.Fatal("a refused blob was stored")
	}
	if err := s.WriteBlobSized(t.Context(), bytes.NewReader(data), d, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadAll(d); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadAll = %q, %v", got, err)
	}
}

type countingZeros struct{ n int64 }

func (z *countingZeros) Read(p []byte) (int, error) {
	clear(p)
	z.n += int64(len(p))
	return len(p), nil
}
