package executor

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Secrets travel from Run to the init on the spec pipe, after the spec's
// JSON and its newline, as raw bytes in the order of the secret mounts;
// the JSON carries only each one's length (Mount.Size). The init writes
// them to a tmpfs mounted in its own mount namespace: no file on disk
// ever holds them, and the tmpfs is gone once the sandbox is.

// withSecretSizes returns mounts, copied if it has secrets, with each
// secret's Size set to the length of its Data.
func withSecretSizes(mounts []Mount) []Mount {
	var out []Mount
	for i, m := range mounts {
		if m.Type != MountSecret {
			continue
		}
		if out == nil {
			out = append([]Mount(nil), mounts...)
		}
		out[i].Size = int64(len(m.Data))
	}
	if out == nil {
		return mounts
	}
	return out
}

// sendSecrets writes the secrets' data after the spec.
func sendSecrets(w io.Writer, mounts []Mount) error {
	for _, m := range mounts {
		if m.Type != MountSecret {
			continue
		}
		if _, err := w.Write(m.Data); err != nil {
			return err
		}
	}
	return nil
}

// readSecrets reads, in the init, the secrets' data that follows the spec
// in r (the decoder's buffered bytes, then the pipe) into mounts.
func readSecrets(r io.Reader, mounts []Mount) error {
	br := bufio.NewReader(r)
	first := true
	for i := range mounts {
		m := &mounts[i]
		if m.Type != MountSecret {
			continue
		}
		if first {
			// json.Encoder ends the spec with a newline.
			if b, err := br.ReadByte(); err != nil || b != '\n' {
				return fmt.Errorf("reading secrets: no newline after the spec (%v)", err)
			}
			first = false
		}
		if m.Size < 0 || m.Size > 1<<30 {
			return fmt.Errorf("secret for %s: bad size %d", m.Target, m.Size)
		}
		m.Data = make([]byte, m.Size)
		if _, err := io.ReadFull(br, m.Data); err != nil {
			return fmt.Errorf("reading secret for %s: %w", m.Target, err)
		}
	}
	return nil
}

// secret writes m.Data to a file on the sandbox's secrets tmpfs, mounted
// at first use, and binds the file read-only at m.Target.
func (r *rootfs) secret(n int, m Mount) error {
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
