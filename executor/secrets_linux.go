package executor

import "io"

// Secrets travel from Run to the init on the spec pipe, after the config's
// frame and the seccomp program, as raw bytes in the order of the secret
// mounts; the frame carries only each one's length (Mount.Size). See
// sandboxinit's readPayload.

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
