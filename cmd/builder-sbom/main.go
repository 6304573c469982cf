// Command builder-sbom writes an SPDX 2.3 JSON SBOM of a root filesystem
// (a directory) to stdout, using anchore/syft's catalogers for installed
// software: Debian's /var/lib/dpkg/status, Alpine's /lib/apk/db/installed,
// the RPM database, the build info of Go binaries, and syft's others.
//
// builder runs it for `--sbom`. It is a separate binary in its own module
// because linking syft into builder would add its size and, worse, its
// packages' initialisation to every builder start (see README.md here for
// the measurement); a build without --sbom never loads it.
//
//	usage: builder-sbom [-name NAME] DIR
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/cataloging"
	"github.com/anchore/syft/syft/format/spdxjson"
	"github.com/anchore/syft/syft/source"
	// The RPM cataloguer reads rpmdb.sqlite through database/sql's
	// "sqlite" driver, which syft leaves to the program (as its CLI does).
	_ "modernc.org/sqlite"
)

func main() {
	name := flag.String("name", "", "name of the scanned image, for the SBOM's document name")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: builder-sbom [-name NAME] DIR  (writes an SPDX 2.3 JSON SBOM of DIR to stdout)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := scan(ctx, os.Stdout, flag.Arg(0), *name); err != nil {
		fmt.Fprintln(os.Stderr, "builder-sbom:", err)
		os.Exit(1)
	}
}

// scan writes the SBOM of the root filesystem at dir to w.
func scan(ctx context.Context, w io.Writer, dir, name string) error {
	if st, err := os.Stat(dir); err != nil {
		return err
	} else if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	cfg := syft.DefaultGetSourceConfig().WithSources("dir")
	if name != "" {
		cfg = cfg.WithAlias(source.Alias{Name: name})
	}
	src, err := syft.GetSource(ctx, dir, cfg)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	defer src.Close()
	// A directory source would get syft's "directory" catalogers, which
	// read manifests (go.mod, package.json) rather than what is installed;
	// a root filesystem is an image's, so select the "image" set, as
	// BuildKit's scanner does for an image's filesystem.
	sbomCfg := syft.DefaultCreateSBOMConfig().
		WithCatalogerSelection(cataloging.NewSelectionRequest().WithDefaults("image")).
		WithoutFiles()
	s, err := syft.CreateSBOM(ctx, src, sbomCfg)
	if err != nil {
		return fmt.Errorf("cataloguing %s: %w", dir, err)
	}
	enc, err := spdxjson.NewFormatEncoderWithConfig(spdxjson.DefaultEncoderConfig())
	if err != nil {
		return err
	}
	return enc.Encode(w, *s)
}
