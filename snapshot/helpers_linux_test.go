//go:build linux

package snapshot

import (
	"os"

	"github.com/builder-dev/builder/internal/archive"

	"archive/tar"
	"bytes"
	"io"
	"testing"
	"time"
)

// tarEntry is a tar entry in a form that compares with ==-like ease.
type tarEntry struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	Linkname string
	Major    int64
	Minor    int64
	ModTime  time.Time
	Xattrs   map[string]string
	Content  string
}

func (e tarEntry) header() *tar.Header {
	h := &tar.Header{
		Name:     e.Name,
		Typeflag: e.Type,
		Mode:     e.Mode,
		Uid:      e.UID,
		Gid:      e.GID,
		Linkname: e.Linkname,
		Devmajor: e.Major,
		Devminor: e.Minor,
		ModTime:  e.ModTime,
		Size:     int64(len(e.Content)),
		Format:   tar.FormatPAX,
	}
	for k, v := range e.Xattrs {
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords[archive.PAXXattr+k] = v
	}
	return h
}

// makeTar writes entries, in order, as a PAX tar.
func makeTar(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(e.header()); err != nil {
			t.Fatalf("writing tar header %s: %v", e.Name, err)
		}
		if _, err := io.WriteString(tw, e.Content); err != nil {
			t.Fatalf("writing tar content %s: %v", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readTar returns the entries of a tar, in order.
func readTar(t testing.TB, b []byte) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading tar entry %s: %v", h.Name, err)
		}
		e := tarEntry{
			Name: h.Name, Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid,
			Linkname: h.Linkname, Major: h.Devmajor, Minor: h.Devminor,
			ModTime: h.ModTime.UTC(), Content: string(content),
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("entry %s has uname %q gname %q, want empty", h.Name, h.Uname, h.Gname)
		}
		if !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("entry %s has atime/ctime, want none", h.Name)
		}
		for k, v := range h.PAXRecords {
			if len(k) > len(archive.PAXXattr) && k[:len(archive.PAXXattr)] == archive.PAXXattr {
				if e.Xattrs == nil {
					e.Xattrs = map[string]string{}
				}
				e.Xattrs[k[len(archive.PAXXattr):]] = v
			}
		}
		out = append(out, e)
	}
}

func entryNames(es []tarEntry) []string {
	var n []string
	for _, e := range es {
		n = append(n, e.Name)
	}
	return n
}

// dirNames returns the sorted names in dir.
func dirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, err
}
