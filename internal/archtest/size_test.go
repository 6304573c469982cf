package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The size bounds of the package split (issue 11): past them a package, a
// file or a function has usually grown a second concern. A table-driven
// dispatcher may exceed maxFuncLines when listed in longFuncs with why.
const (
	maxPackageLines = 1500
	maxFileLines    = 600
	maxFuncLines    = 80
)

// longFuncs are functions allowed over maxFuncLines ("pkg.Func": why).
var longFuncs = map[string]string{}

// TestSizes counts the non-test Go files of every package of the module
// (as go list sees them for linux).
func TestSizes(t *testing.T) {
	for _, p := range goPackages(t) {
		rel, _ := relative(p.ImportPath)
		for _, v := range sizeViolations(rel, p.Dir, p.GoFiles) {
			t.Error(v)
		}
	}
}

// goPackage is a package of the module as go list sees it for linux.
type goPackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
}

// goPackages lists the packages of the module, for linux.
func goPackages(t *testing.T) []goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Env = append(os.Environ(), "GOOS=linux")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
}

func sizeViolations(pkg, dir string, files []string) []string {
	var out []string
	total := 0
	fset := token.NewFileSet()
	for _, name := range files {
		path := filepath.Join(dir, name)
		src, err := os.ReadFile(path)
		if err != nil {
			return append(out, err.Error())
		}
		lines := bytes.Count(src, []byte("\n"))
		total += lines
		if lines > maxFileLines {
			out = append(out, fmt.Sprintf("%s/%s has %d lines (at most %d): split it by concern", pkg, name, lines, maxFileLines))
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return append(out, err.Error())
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			name := pkg + "." + fd.Name.Name
			if n > maxFuncLines && longFuncs[name] == "" {
				out = append(out, fmt.Sprintf("%s (%s) has %d lines (at most %d): split it along its phases, or list it in longFuncs saying why", name, filepath.Base(path), n, maxFuncLines))
			}
		}
	}
	if total > maxPackageLines {
		out = append(out, fmt.Sprintf("package %s has %d non-test lines (at most %d): give a concern a package of its own", pkg, total, maxPackageLines))
	}
	return out
}

// TestSizesCatch feeds sizeViolations a file over every bound.
func TestSizesCatch(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("package big\n\nfunc long() {\n")
	for range maxPackageLines {
		b.WriteString("\t_ = 1\n")
	}
	b.WriteString("}\n")
	if err := os.WriteFile(filepath.Join(dir, "big.go"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(sizeViolations("big", dir, []string{"big.go"}), "\n")
	for _, want := range []string{"big/big.go has", "big.long (big.go) has", "package big has"} {
		if !strings.Contains(got, want) {
			t.Errorf("violations %q lack %q", got, want)
		}
	}
}
