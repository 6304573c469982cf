package conformance_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// copyTree copies src into dst with normalised metadata: files 0644 (0755
// when any execute bit is set), directories 0755, symlinks as they are.
func copyTree(src, dst string) error {
	if _, err := os.Lstat(src); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			mode := fs.FileMode(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			if err := os.WriteFile(target, b, mode); err != nil {
				return err
			}
			return os.Chmod(target, mode)
		}
	})
}

// genTime is the mtime of everything context.gen makes.
var genTime = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// runContextGen applies a case's context.gen recipe, one command a line:
//
//	tar NAME DIR          archive of the case's DIR as context/NAME (or,
//	                      for http/NAME, served as {{HTTP}}/NAME); the
//	                      compression follows NAME's suffix: .tar .tar.gz
//	                      .tgz .tar.bz2 .tar.xz .tar.zst
//	mkdir PATH MODE       an (empty) directory in the context
//	chmod MODE PATH       change a context file's mode
//	symlink TARGET PATH   a symlink in the context
//	hardlink TARGET PATH  a hard link in the context
//	mtime UNIX PATH       set a context file's mtime (Unix seconds)
//	git NAME DIR          a bare git repository of DIR, one commit, served
//	                      (dumb HTTP) as {{HTTP}}/NAME
//	gobuild NAME DIR      the Go program in the case's DIR, built static as
//	                      context/NAME (a helper a RUN step bind-mounts,
//	                      for what busybox lacks)
//	xattr NAME=HEX PATH   set a context file's xattr NAME to the bytes HEX
func runContextGen(caseDir, ctxDir, httpDir string) error {
	b, err := os.ReadFile(filepath.Join(caseDir, "context.gen"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 3 {
			return fmt.Errorf("line %d: want 3 fields: %q", i+1, line)
		}
		err := func() error {
			switch f[0] {
			case "tar":
				dest := filepath.Join(ctxDir, f[1])
				if rest, ok := strings.CutPrefix(f[1], "http/"); ok {
					dest = filepath.Join(httpDir, rest)
				}
				return writeArchive(filepath.Join(caseDir, f[2]), dest)
			case "mkdir":
				mode, err := strconv.ParseUint(f[2], 8, 32)
				if err != nil {
					return err
				}
				p := filepath.Join(ctxDir, f[1])
				if err := os.MkdirAll(p, 0o755); err != nil {
					return err
				}
				return os.Chmod(p, fs.FileMode(mode))
			case "chmod":
				mode, err := strconv.ParseUint(f[1], 8, 32)
				if err != nil {
					return err
				}
				return os.Chmod(filepath.Join(ctxDir, f[2]), fs.FileMode(mode))
			case "symlink":
				return os.Symlink(f[1], filepath.Join(ctxDir, f[2]))
			case "mtime":
				sec, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					return err
				}
				tm := time.Unix(sec, 0)
				return os.Chtimes(filepath.Join(ctxDir, f[2]), tm, tm)
			case "hardlink":
				return os.Link(filepath.Join(ctxDir, f[1]), filepath.Join(ctxDir, f[2]))
			case "git":
				return makeGitRepo(filepath.Join(caseDir, f[2]), filepath.Join(httpDir, f[1]))
			case "gobuild":
				return goBuild(filepath.Join(caseDir, f[2]), filepath.Join(ctxDir, f[1]))
			case "xattr":
				name, hexValue, ok := strings.Cut(f[1], "=")
				value, err := hex.DecodeString(hexValue)
				if !ok || err != nil {
					return fmt.Errorf("want NAME=HEX, got %q", f[1])
				}
				return unix.Lsetxattr(filepath.Join(ctxDir, f[2]), name, value, 0)
			}
			return fmt.Errorf("unknown command %s", f[0])
		}()
		if err != nil {
			return fmt.Errorf("line %d (%s): %w", i+1, line, err)
		}
	}
	return nil
}

// writeArchive writes a deterministic tar of dir (entries sorted, owned by
// 0:0 unless the file's name says uid-N, fixed mtimes), compressed by the
// suffix of dest.
func writeArchive(dir, dest string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: genTime, Format: tar.FormatPAX}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
			return tw.WriteHeader(hdr)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, link, 0o777
			return tw.WriteHeader(hdr)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, int64(len(data))
		if info.Mode()&0o111 != 0 {
			hdr.Mode = 0o755
		}
		if strings.Contains(rel, "uid-1234") {
			hdr.Uid, hdr.Gid = 1234, 1234
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	raw := buf.Bytes()
	var out []byte
	switch {
	case strings.HasSuffix(dest, ".tar"):
		out = raw
	case strings.HasSuffix(dest, ".tar.gz"), strings.HasSuffix(dest, ".tgz"):
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.ModTime = genTime
		zw.Write(raw)
		if err := zw.Close(); err != nil {
			return err
		}
		out = z.Bytes()
	case strings.HasSuffix(dest, ".tar.zst"):
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			return err
		}
		out = enc.EncodeAll(raw, nil)
		enc.Close()
	case strings.HasSuffix(dest, ".tar.bz2"), strings.HasSuffix(dest, ".tar.xz"):
		tool, pkg := "bzip2", "bzip2"
		if strings.HasSuffix(dest, ".xz") {
			tool, pkg = "xz", "xz-utils"
		}
		cmd := exec.Command(tool, "-c")
		cmd.Stdin = bytes.NewReader(raw)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if out, err = cmd.Output(); err != nil {
			return fmt.Errorf("%s (from Debian's %s): %w: %s", tool, pkg, err, stderr.String())
		}
	default:
		return fmt.Errorf("%s: unknown archive suffix", dest)
	}
	return os.WriteFile(dest, out, 0o644)
}

// goBuild builds the Go program in dir as a static binary at dest.
func goBuild(dir, dest string) error {
	abs, err := filepath.Abs(dest)
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", abs, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build in %s: %w: %s", dir, err, out)
	}
	return nil
}

// makeGitRepo commits dir into a new repository and serves it as a bare
// repository at dest (git's dumb HTTP protocol needs only files).
func makeGitRepo(dir, dest string) error {
	work, err := os.MkdirTemp("", "conformance-git-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := copyTree(dir, work); err != nil {
		return err
	}
	date := genTime.Format(time.RFC3339)
	run := func(dir string, args ...string) error {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date,
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	steps := [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "-A"},
		{"commit", "-q", "-m", "conformance fixture"},
		{"tag", "v1"},
		{"clone", "-q", "--bare", work, dest},
	}
	for _, s := range steps {
		if err := run(work, s...); err != nil {
			return err
		}
	}
	return run(dest, "update-server-info")
}
