package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/solver"
	"golang.org/x/term"
)

// gatedProgress holds progress events back while a debug shell has the
// terminal, so that steps still running do not write over it.
type gatedProgress struct {
	progressPrinter
	mu sync.RWMutex
}

func (g *gatedProgress) Event(e solver.Event) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	g.progressPrinter.Event(e)
}

// debugShell returns the OnRunFailure hook of --on-error=shell: a shell on
// the terminal in the failed step's sandbox (its files as the command left
// them, its environment, user, working directory and mounts). The build
// then ends with the step's error as it would have.
func debugShell(tty *os.File, gate *gatedProgress) func(context.Context, string, executor.Spec, error) {
	var once sync.Mutex
	return func(ctx context.Context, step string, spec executor.Spec, stepErr error) {
		// One shell at a time, for the first failures to get here.
		once.Lock()
		defer once.Unlock()
		gate.mu.Lock()
		defer gate.mu.Unlock()
		fmt.Fprintf(tty, "\n%s failed: %v\n", step, stepErr)
		fmt.Fprintln(tty, "Debug shell in the step's sandbox, with the files as the command left them; exit it to end the build.")
		spec.Args = []string{"/bin/sh"}
		spec.Env = append(spec.Env[:len(spec.Env):len(spec.Env)], "PS1=(debug) \\w \\$ ")
		spec.Stdin, spec.Stdout, spec.Stderr = tty, tty, tty
		spec.Terminal = true
		spec.Usage = nil // the step's figures stay the step's
		if err := executor.Run(ctx, spec); err != nil {
			if _, ok := err.(*executor.ExitError); !ok {
				fmt.Fprintf(tty, "debug shell: %v\n", err)
			}
		}
	}
}

// onErrorTerminal checks that --on-error=shell has a terminal to use.
func onErrorTerminal(mode string) (*os.File, error) {
	switch mode {
	case "", "fail":
		return nil, nil
	case "shell":
	default:
		return nil, fmt.Errorf("--on-error=%s: use fail or shell", mode)
	}
	for _, f := range []*os.File{os.Stdin, os.Stdout, os.Stderr} {
		if !term.IsTerminal(int(f.Fd())) {
			return nil, fmt.Errorf("--on-error=shell needs a terminal: %s is not one (run builder from an interactive shell, or drop --on-error)", f.Name())
		}
	}
	return os.Stdin, nil
}
