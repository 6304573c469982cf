package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// secret writes m.Data to a file on the sandbox's secrets tmpfs, mounted
// at first use, and binds the file read-only at m.Target.
func (r *Root) secret(n int, m Mount) error {
	if r.secrets == "" {
		dir := filepath.Join(r.stateDir, "secrets")
		if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
			return err
		}
		// Only this mount namespace sees the tmpfs ("/" is private).
		if err := mount("tmpfs", dir, "tmpfs", procFlags, "mode=0700"); err != nil {
			return err
		}
		r.secrets = dir
	}
	p := filepath.Join(r.secrets, strconv.Itoa(n))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(m.Data)
	clear(m.Data)
	if err == nil {
		err = f.Chown(m.UID, m.GID)
	}
	if err == nil {
		err = f.Chmod(os.FileMode(m.Mode) & os.ModePerm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing secret file: %w", err)
	}
	return r.bindOne(p, m.Target, false, true)
}
