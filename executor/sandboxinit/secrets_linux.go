package sandboxinit

import (
	"fmt"
	"io"

	"github.com/builder-dev/builder/executor/sandboxinit/rootfs"
)

// The config's raw bytes travel from executor.Run to the init on the spec
// pipe after the config's frame (wire.go): first the seccomp program
// (Config.SeccompSize bytes), then the secrets in the order of the secret
// mounts, whose lengths the config carries (Mount.Size). The secrets are
// never part of the encoded config, which a debugging session may dump. The init writes the secrets to a tmpfs mounted in
// its own mount namespace: no file on disk ever holds them, and the tmpfs
// is gone once the sandbox is.

// readPayload reads, in the init, the bytes that follow the config's
// frame in r into cfg.
func readPayload(br io.Reader, cfg *Config) error {
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
