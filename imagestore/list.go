package imagestore

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"
)

// WriteList writes the images of the store as `builder images` lists them:
// name, short manifest (or index) digest, creation time and platforms.
func (s *Store) WriteList(out io.Writer) error {
	imgs, err := s.DB.Images()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tDIGEST\tCREATED\tPLATFORMS")
	for _, img := range imgs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", img.Name, img.Manifest.Digest.Encoded()[:12], img.Created.Local().Format(time.DateTime), s.platforms(img))
	}
	return w.Flush()
}

// SaveFile is Save into the file path. It writes a temporary file next to
// it and renames it, so that a failed save leaves no partial archive (nor
// destroys an older one).
func (s *Store) SaveFile(path, format string, names ...string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".save-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := s.Save(tmp, format, names...); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
