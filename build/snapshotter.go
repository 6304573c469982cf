package build

import "github.com/builder-dev/builder/build/snapmode"

// SnapshotterEnv forces the snapshotter mode (see package build/snapmode).
const SnapshotterEnv = snapmode.Env
