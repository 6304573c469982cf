package sandboxinit

import (
	"bufio"
	"fmt"
	"io"

	"github.com/builder-dev/builder/executor/sandboxinit/rootfs"
)

// Secrets travel from executor.Run to the init on the spec pipe, after the spec's
// JSON and its newline, as raw bytes in the order of the secret mounts;
// the JSON carries only each one's length (Mount.Size). The init writes
// them to a tmpfs mounted in its own mount namespace: no file on disk
// ever holds them, and the tmpfs is gone once the sandbox is.

// readSecrets reads, in the init, the secrets' data that follows the spec
// in r (the decoder's buffered bytes, then the pipe) into mounts.
func readSecrets(r io.Reader, mounts []rootfs.Mount) error {
	br := bufio.NewReader(r)
	first := true
	for i := range mounts {
		m := &mounts[i]
		if m.Type != rootfs.MountSecret {
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
