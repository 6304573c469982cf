package sandboxinit

import (
	"bufio"
	"fmt"
	"io"

	"github.com/builder-dev/builder/executor/sandboxinit/rootfs"
)

// The config's raw bytes travel from executor.Run to the init on the spec
// pipe after the config's JSON and its newline: first the seccomp program
// (Config.SeccompSize bytes), then the secrets in the order of the secret
// mounts, whose lengths the JSON carries (Mount.Size). Raw, the program
// costs the init no base64 decoding; the secrets never appear in the JSON
// (which may be logged). The init writes the secrets to a tmpfs mounted in
// its own mount namespace: no file on disk ever holds them, and the tmpfs
// is gone once the sandbox is.

// readPayload reads, in the init, the bytes that follow the config's JSON
// in r (the decoder's buffered bytes, then the pipe) into cfg.
func readPayload(r io.Reader, cfg *Config) error {
	br := bufio.NewReader(r)
	// json.Encoder ends the config with a newline.
	if b, err := br.ReadByte(); err != nil || b != '\n' {
		return fmt.Errorf("no newline after the config (%v)", err)
	}
	if cfg.SeccompSize < 0 || cfg.SeccompSize > maxSeccompSize {
		return fmt.Errorf("seccomp program: bad size %d", cfg.SeccompSize)
	}
	cfg.Seccomp = make([]byte, cfg.SeccompSize)
	if _, err := io.ReadFull(br, cfg.Seccomp); err != nil {
		return fmt.Errorf("reading seccomp program: %w", err)
	}
	for i := range cfg.RunMounts {
		m := &cfg.RunMounts[i]
		if m.Type != rootfs.MountSecret {
			continue
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
