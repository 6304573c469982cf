package run

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/progress"
	"github.com/builder-dev/builder/solver/ops"
)

// DebugShell returns the OnRunFailure hook of --on-error=shell: a shell on
// the terminal in the failed step's sandbox (its files as the command left
// them, its environment, user, working directory and mounts). The build
// then ends with the step's error as it would have.
func DebugShell(tty *os.File, gate *progress.Gate) func(context.Context, ops.RunFailure) {
	var once sync.Mutex
	return func(ctx context.Context, f ops.RunFailure) {
		// One shell at a time, for the first failures to get here.
		once.Lock()
		defer once.Unlock()
		defer gate.Hold()()
		fmt.Fprintf(tty, "\n%s failed: %v\n", f.Step, f.Err)
		fmt.Fprintln(tty, "Debug shell in the step's sandbox, with the files as the command left them; exit it to end the build.")
		if err := executor.Run(ctx, debugSpec(f.Spec, tty)); err != nil {
			if _, ok := err.(*executor.ExitError); !ok {
				fmt.Fprintf(tty, "debug shell: %v\n", err)
			}
		}
	}
}

// debugSpec is the spec of --on-error=shell's shell in a failed step's
// sandbox.
func debugSpec(spec executor.Spec, tty *os.File) executor.Spec {
	spec.Args = []string{"/bin/sh"}
	spec.Env = append(spec.Env[:len(spec.Env):len(spec.Env)], "PS1=(debug) \\w \\$ ")
	spec.Stdin, spec.Stdout, spec.Stderr = tty, tty, tty
	spec.Terminal = true
	spec.Usage = nil // the step's figures stay the step's
	// A user's shell is not a step whose layer a syncfs makes durable:
	// its sync calls run (as in builder run and debug).
	spec.ElideSync = false
	return spec
}

// KeepFailure returns the OnRunFailure hook of --on-error=keep: the failed
// step's filesystem is kept, for `builder debug` to open a shell in later.
func KeepFailure(st *build.State, warn io.Writer) func(context.Context, ops.RunFailure) {
	var mu sync.Mutex
	return func(ctx context.Context, f ops.RunFailure) {
		mu.Lock()
		defer mu.Unlock()
		id, err := st.Kept.Keep(f)
		if err != nil {
			fmt.Fprintln(warn, "WARNING:", err)
			return
		}
		fmt.Fprintf(warn, "kept the failed step's filesystem as %s: builder debug %s (or LAST) opens a shell in it; builder prune removes it\n", id, id)
	}
}
