package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/anchore/syft/syft/linux"
	"github.com/anchore/syft/syft/pkg"
	"github.com/anchore/syft/syft/pkg/cataloger/alpine"
	cpegen "github.com/anchore/syft/syft/pkg/cataloger/common/cpe"
	"github.com/anchore/syft/syft/pkg/cataloger/debian"
	"github.com/anchore/syft/syft/pkg/cataloger/golang"
	"github.com/anchore/syft/syft/pkg/cataloger/redhat"
	"github.com/anchore/syft/syft/sbom"
	"github.com/anchore/syft/syft/source"
)

// syftModule is the module whose catalogers make the SBOM; its version
// names the tool in the document, as syft's own SBOMs do.
const syftModule = "github.com/anchore/syft"

// catalogers are the ones issue 13 asks for, and only those: syft's
// CreateSBOM would link (and its "image" selection would run) some forty
// more (Java archives, Python, npm, binaries by signature, …), which cost
// most of the scan and of the compile.
func catalogers() []pkg.Cataloger {
	return []pkg.Cataloger{
		debian.NewDBCataloger(),
		alpine.NewDBCataloger(),
		redhat.NewDBCataloger(),
		// Defaults as syft's: licenses from the binary only, no
		// network (remote license search is off by default).
		golang.NewGoModuleBinaryCataloger(golang.DefaultCatalogerConfig()),
	}
}

// catalog runs the catalogers over src's squashed file tree and
// completes their packages as syft's package task does (cataloger name,
// CPEs, language), so the SPDX output matches syft's for those packages.
// A file a cataloger cannot read (a stripped Go binary, a damaged
// database) does not fail the scan, as in syft: it is reported on warn.
func catalog(ctx context.Context, src source.Source, warn io.Writer) (*sbom.SBOM, error) {
	resolver, err := src.FileResolver(source.SquashedScope)
	if err != nil {
		return nil, err
	}
	s := &sbom.SBOM{
		Source:     src.Describe(),
		Descriptor: sbom.Descriptor{Name: "syft", Version: syftVersion()},
		Artifacts: sbom.Artifacts{
			Packages:          pkg.NewCollection(),
			LinuxDistribution: linux.IdentifyRelease(resolver),
		},
	}
	for _, c := range catalogers() {
		pkgs, rels, err := c.Catalog(ctx, resolver)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			fmt.Fprintf(warn, "builder-sbom: warning: %s: %v\n", c.Name(), err)
		}
		for i := range pkgs {
			complete(&pkgs[i], c.Name())
		}
		s.Artifacts.Packages.Add(pkgs...)
		s.Relationships = append(s.Relationships, rels...)
	}
	return s, nil
}

// complete fills in what syft's package task adds to a cataloger's
// packages (internal/task.finalizePkgCatalogerResults).
func complete(p *pkg.Package, cataloger string) {
	if p.FoundBy == "" {
		p.FoundBy = cataloger
	}
	if len(p.CPEs) == 0 {
		if cpes, ok := cpegen.DictionaryFind(*p); ok {
			p.CPEs = cpes
		} else {
			p.CPEs = cpegen.Generate(*p)
		}
	}
	if p.Language == "" {
		p.Language = pkg.LanguageFromPURL(p.PURL)
	}
}

func syftVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == syftModule {
				return m.Version
			}
		}
	}
	return "unknown"
}
