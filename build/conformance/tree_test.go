package conformance_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// flatten applies layers in order, with OCI whiteouts, onto tree (path ->
// entry) and returns it.
func flatten(tree map[string]confFile, layers []v1.Layer) (map[string]confFile, error) {
	removeUnder := func(dir string, self bool) {
		for p := range tree {
			if (self && p == dir) || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") {
				delete(tree, p)
			}
		}
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		// Whiteouts apply to the layers below only: collect this layer's
		// entries first.
		var adds []confFile
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rc.Close()
				return nil, err
			}
			p := cleanPath(hdr.Name)
			dir, base := path.Split(p)
			switch {
			case base == ".wh..wh..opq":
				removeUnder(dir, false)
				continue
			case strings.HasPrefix(base, ".wh."):
				removeUnder(path.Join(dir, strings.TrimPrefix(base, ".wh.")), true)
				continue
			}
			f, err := entry(p, hdr, tr)
			if err != nil {
				rc.Close()
				return nil, err
			}
			adds = append(adds, f)
		}
		rc.Close()
		for _, f := range adds {
			if old, ok := tree[f.Path]; ok && old.Type == "dir" && f.Type != "dir" {
				removeUnder(f.Path, false)
			}
			tree[f.Path] = f
		}
	}
	return tree, nil
}

func cleanPath(p string) string {
	return path.Clean("/" + strings.TrimPrefix(p, "./"))
}

func entry(p string, hdr *tar.Header, r io.Reader) (confFile, error) {
	uid, gid, size := hdr.Uid, hdr.Gid, int64(0)
	mtime := hdr.ModTime.Unix()
	f := confFile{Path: p, UID: &uid, GID: &gid, Size: &size, Mtime: &mtime}
	mode := hdr.FileInfo().Mode()
	perm := int64(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		perm |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		perm |= 0o1000
	}
	f.Mode = fmt.Sprintf("%04o", perm)
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if f.Xattrs == nil {
				f.Xattrs = map[string]string{}
			}
			f.Xattrs[name] = hex.EncodeToString([]byte(v))
		}
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		f.Type = "file"
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil {
			return f, err
		}
		size = n
		f.SHA256 = hex.EncodeToString(h.Sum(nil))
	case tar.TypeDir:
		f.Type = "dir"
	case tar.TypeSymlink:
		f.Type = "symlink"
		f.Link = hdr.Linkname
	case tar.TypeLink:
		f.Type = "hardlink"
		f.Link = cleanPath(hdr.Linkname)
	default:
		f.Type = "other"
	}
	return f, nil
}

// treeDiff lists the entries of tree that are new or differ from base
// (mtime aside), and base's entries that tree lacks, by path.
func treeDiff(base, tree map[string]confFile) []confFile {
	out := []confFile{}
	for p, f := range tree {
		if b, ok := base[p]; !ok || b.line(false) != f.line(false) {
			out = append(out, f)
		}
	}
	for p := range base {
		if _, ok := tree[p]; !ok {
			out = append(out, confFile{Path: p, Deleted: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// compare returns a diff-like message per part of want that got differs in.
func compare(want, got *confExpected) []string {
	var problems []string
	wc, gc := want.Config, got.Config
	if wc == nil {
		wc = &confConfig{}
	}
	wj, _ := json.MarshalIndent(wc, "", "  ")
	gj, _ := json.MarshalIndent(gc, "", "  ")
	if !bytes.Equal(wj, gj) {
		problems = append(problems, "config differs (- want, + got):\n"+lineDiff(strings.Split(string(wj), "\n"), strings.Split(string(gj), "\n")))
	}
	if want.Author != got.Author {
		problems = append(problems, fmt.Sprintf("author = %q, want %q", got.Author, want.Author))
	}
	if want.History != nil {
		var w, g []string
		for _, h := range want.History {
			w = append(w, fmt.Sprintf("%q empty_layer=%v", h.CreatedBy, h.EmptyLayer))
		}
		for _, h := range got.History {
			g = append(g, fmt.Sprintf("%q empty_layer=%v", h.CreatedBy, h.EmptyLayer))
		}
		if !slices.Equal(w, g) {
			problems = append(problems, "history differs (- want, + got):\n"+lineDiff(w, g))
		}
	}
	var w, g []string
	mtimes := map[string]bool{}
	for _, f := range want.Files {
		w = append(w, f.line(true))
		if f.Mtime != nil {
			mtimes[f.Path] = true
		}
	}
	for _, f := range got.Files {
		g = append(g, f.line(mtimes[f.Path]))
	}
	if !slices.Equal(w, g) {
		problems = append(problems, "file tree differs from the base's (- want, + got):\n"+lineDiff(w, g))
	}
	return problems
}

// lineDiff marks the lines only in want with "-" and only in got with "+",
// keeping common lines as context.
func lineDiff(want, got []string) string {
	// Longest common subsequence; the lists are small.
	n, m := len(want), len(got)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && want[i] == got[j]:
			b.WriteString("  " + want[i] + "\n")
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			b.WriteString("+ " + got[j] + "\n")
			j++
		default:
			b.WriteString("- " + want[i] + "\n")
			i++
		}
	}
	return b.String()
}
