// Command builder-sbom writes an SPDX 2.3 JSON SBOM of a root filesystem
// (a directory) to stdout, using anchore/syft's catalogers for installed
// software: Debian's dpkg status, Alpine's apk database, the RPM database
// (Berkeley DB, NDB and rpmdb.sqlite) and the build info of Go binaries.
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
	"path/filepath"

	"github.com/anchore/syft/syft/format/spdxjson"
	"github.com/anchore/syft/syft/source"
	"github.com/anchore/syft/syft/source/directorysource"
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
	if err := scan(ctx, os.Stdout, os.Stderr, flag.Arg(0), *name); err != nil {
		fmt.Fprintln(os.Stderr, "builder-sbom:", err)
		os.Exit(1)
	}
}

// skipped are directories that hold neither a package database nor Go
// executables, but most of a Debian image's files: manual pages,
// translations, time zones, and the data and native modules of perl,
// gcc, Debian's arch-independent node modules (/usr/share/nodejs) and
// glibc's iconv converters. Python trees and /usr/lib/node_modules stay
// in: wheels and npm packages ship Go executables and c-shared libraries
// (esbuild's @esbuild/linux-x64/bin/esbuild), and Python's packages are
// found there. Indexing a file costs
// syft a stat, an open and a head read (for its MIME type), and every
// ELF file in the index is then opened again by the Go cataloger, so
// these were most of the scan's CPU time on Debian; the packages found,
// with their versions, licenses and purls, are the same without them
// (dpkg's file lists and /usr/share/doc stay in).
var skipped = source.ExcludeConfig{Paths: []string{
	"./proc", "./sys", "./dev",
	"./usr/share/man", "./usr/share/locale", "./usr/share/zoneinfo", "./usr/share/i18n",
	"./usr/share/info", "./usr/share/lintian", "./usr/share/common-licenses",
	"./usr/share/bash-completion", "./usr/share/terminfo", "./usr/lib/terminfo",
	"./usr/share/perl", "./usr/share/perl5", "./usr/lib/*/perl-base", "./usr/lib/*/perl", "./usr/lib/*/perl5",
	"./usr/lib/*/gconv",
	"./usr/lib/gcc", "./usr/libexec/gcc", "./usr/include",
	"./usr/share/nodejs", "./usr/share/icons", "./usr/share/fonts",
	"./var/lib/apt/lists", "./var/cache",
}}

// scan writes the SBOM of the root filesystem at dir to w, and warnings
// to warn.
func scan(ctx context.Context, w, warn io.Writer, dir, name string) error {
	if st, err := os.Stat(dir); err != nil {
		return err
	} else if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// Base makes absolute symlinks resolve inside dir, as they do in the
	// image, instead of leading the scan into the host's filesystem.
	src, err := directorysource.New(directorysource.Config{Path: abs, Base: abs, Exclude: skipped, Alias: source.Alias{Name: name}})
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	defer src.Close()
	s, err := catalog(ctx, src, warn)
	if err != nil {
		return fmt.Errorf("cataloguing %s: %w", dir, err)
	}
	enc, err := spdxjson.NewFormatEncoderWithConfig(spdxjson.DefaultEncoderConfig())
	if err != nil {
		return err
	}
	return enc.Encode(w, *s)
}
