// Package heredoc turns a RUN with here-documents into the command line
// and inline files BuildKit runs for it.
package heredoc

import (
	"errors"
	"path"
	"strings"

	"github.com/builder-dev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// scriptDir is where a heredoc script with a shebang is made available to
// RUN, as BuildKit does; it lies on the sandbox's /dev tmpfs, so it never
// reaches a layer.
const scriptDir = "/dev/pipes/"

// Command turns a RUN with heredocs into a command line:
//   - RUN <<EOF with a shebang line runs the document as a script file;
//   - RUN <<EOF without one runs the document's text with the shell;
//   - anything else (heredocs as input to a command) hands the whole text,
//     documents included, to the shell, which understands heredocs.
func Command(cl instructions.ShellDependantCmdLine, files []instructions.ShellInlineFile) (instructions.ShellDependantCmdLine, []llb.InlineFile, error) {
	if len(cl.CmdLine) != 1 || !cl.PrependShell {
		return cl, nil, errors.New("a heredoc needs the shell form of RUN")
	}
	if h := parser.MustParseHeredoc(cl.CmdLine[0]); h != nil {
		data := files[0].Data
		if files[0].Chomp {
			data = parser.ChompHeredocContent(data)
		}
		if strings.HasPrefix(data, "#!") {
			p := path.Join(scriptDir, files[0].Name)
			return instructions.ShellDependantCmdLine{CmdLine: []string{p}, PrependShell: true}, []llb.InlineFile{{Path: p, Data: data, Mode: 0o755}}, nil
		}
		return instructions.ShellDependantCmdLine{CmdLine: []string{data}, PrependShell: true}, nil, nil
	}
	var b strings.Builder
	b.WriteString(cl.CmdLine[0])
	for _, f := range files {
		b.WriteByte('\n')
		b.WriteString(f.Data)
		b.WriteString(f.Name)
	}
	return instructions.ShellDependantCmdLine{CmdLine: []string{b.String()}, PrependShell: true}, nil, nil
}
