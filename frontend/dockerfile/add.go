package dockerfile

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatchAdd lowers ADD: local files are copied like COPY (local archives
// are unpacked by the copy op); URLs and git repositories are not
// supported yet.
func (c *converter) dispatchAdd(st *stageState, cmd *instructions.AddCommand) error {
	if cmd.Link || len(cmd.ExcludePatterns) > 0 || cmd.Checksum != "" || cmd.KeepGitDir != nil {
		return errors.New("ADD --link, --exclude, --checksum and --keep-git-dir are not supported yet")
	}
	for _, src := range cmd.SourcePaths {
		if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
			return fmt.Errorf("ADD from a URL (%s) is not supported yet; download it in a RUN step or COPY a local file", src)
		}
	}
	return c.dispatchCopy(st, cmd, copySpec{SourcesAndDest: cmd.SourcesAndDest, name: "ADD", chown: cmd.Chown, chmod: cmd.Chmod, add: true})
}
