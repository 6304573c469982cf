package run

import (
	"os"
	"testing"

	"github.com/builder-dev/builder/executor"
)

// TestDebugShellRunsSync: the debug shell opened in a failed step's
// sandbox keeps its sync calls, though the step had them elided.
func TestDebugShellRunsSync(t *testing.T) {
	spec := debugSpec(executor.Spec{Args: []string{"false"}, ElideSync: true}, os.Stdin)
	if spec.ElideSync {
		t.Error("the debug shell's sync calls are elided")
	}
	if len(spec.Args) != 1 || spec.Args[0] != "/bin/sh" || !spec.Terminal {
		t.Errorf("debug shell spec: args %q, terminal %v; want /bin/sh on a terminal", spec.Args, spec.Terminal)
	}
}
