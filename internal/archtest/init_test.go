package archtest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoRegexpAtInit: no package-level variable of ours is a compiled
// regexp. Each is compiled at start-up by every builder command, a no-op
// rebuild's included, whether or not it is used (a hex check's regexp
// cost a millisecond): compile on first use (sync.OnceValue) or match by
// hand.
func TestNoRegexpAtInit(t *testing.T) {
	for _, p := range goPackages(t) {
		for _, name := range p.GoFiles {
			for _, v := range initRegexps(filepath.Join(p.Dir, name)) {
				t.Error(v)
			}
		}
	}
}

// initRegexps lists the package-level variables of the Go file at path
// whose initial value compiles a regexp outside a function literal.
func initRegexps(path string) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			for _, v := range spec.(*ast.ValueSpec).Values {
				ast.Inspect(v, func(n ast.Node) bool {
					if _, ok := n.(*ast.FuncLit); ok {
						return false
					}
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
						if x, ok := sel.X.(*ast.Ident); ok && x.Name == "regexp" && strings.Contains(sel.Sel.Name, "Compile") {
							out = append(out, fmt.Sprintf("%s: a package-level regexp is compiled at every command's start-up: compile it on first use (sync.OnceValue) or match by hand", fset.Position(call.Pos())))
						}
					}
					return true
				})
			}
		}
	}
	return out
}

// TestNoRegexpAtInitCatch feeds initRegexps a file with one regexp compiled
// at start-up and one on first use.
func TestNoRegexpAtInitCatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "re.go")
	src := "package re\n\nimport (\n\t\"regexp\"\n\t\"sync\"\n)\n\nvar eager = regexp.MustCompile(`a+`)\n\n" +
		"var lazy = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`b+`) })\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := initRegexps(path)
	if len(got) != 1 || !strings.Contains(got[0], "re.go:8:") {
		t.Errorf("initRegexps = %q, want one finding, at line 8", got)
	}
}
