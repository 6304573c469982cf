// Command builder-init is the sandbox init of builder's RUN steps, as a
// binary of its own: it holds the init's side of the executor
// (executor/sandboxinit) and nothing else, so it starts several times
// faster than builder itself. The seccomp compiler and the cgroup code stay
// in builder, which sends the init a compiled filter. `make build` embeds it in
// builder (build tag embedinit), which writes it into the state directory
// and starts it for each step; without it builder re-executes itself.
package main

import (
	"fmt"
	"os"

	"github.com/builder-dev/builder/executor/sandboxinit"
)

func main() {
	sandboxinit.Main() // does not return when started by executor.Run
	fmt.Fprintln(os.Stderr, "builder-init is builder's sandbox init; it is started by builder, not by hand")
	os.Exit(2)
}
