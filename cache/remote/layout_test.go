package remote

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/solver"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// oldLayout is a mode=max cache written with --cache-to type=local by the
// builder before this package existed (a multi-stage build FROM scratch),
// without its layer blobs, which an import fetches only when a key needs
// them.
const oldLayout = "testdata/layout-v1"

// TestImportOldLayout reads a cache written before: its config passes, every
// record's chain is linked, and writing the same config again gives the
// same bytes and the same manifest, so that caches stay interchangeable.
func TestImportOldLayout(t *testing.T) {
	l := &Local{Content: newStore(t), Warn: func(w string) { t.Error("warning:", w) }}
	src, err := l.loadSource(t.Context(), Spec{Type: TypeLocal, Dir: oldLayout})
	if err != nil {
		t.Fatal(err)
	}
	if len(src.cfg.Layers) != 8 || len(src.recs) != 8 {
		t.Fatalf("%d layers, %d records; want 8 and 8", len(src.cfg.Layers), len(src.recs))
	}
	for key, top := range src.recs {
		chain := src.cfg.chain(top)
		if len(chain) == 0 || chain[0] != 0 || chain[len(chain)-1] != top {
			t.Errorf("record %s: chain %v does not go from layer 0 to %d", key, chain, top)
		}
	}

	rawM, err := readLayoutManifest(oldLayout, "")
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(rawM, &m); err != nil {
		t.Fatal(err)
	}
	rawCfg, err := os.ReadFile(filepath.Join(oldLayout, "blobs", "sha256", m.Config.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(src.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, rawCfg) {
		t.Errorf("the config written again differs:\n%s\nwant\n%s", again, rawCfg)
	}
	desc, err := l.writeManifest(t.Context(), &src.cfg, m.Layers)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := os.ReadFile(filepath.Join(oldLayout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(idx), desc.Digest.String()) {
		t.Errorf("the manifest written again is %s, not the one of %s", desc.Digest, idx)
	}
}

// TestLayoutRoundTrip exports a config whose records have empty results
// (no layer blobs) to an OCI layout directory, twice, and imports it.
func TestLayoutRoundTrip(t *testing.T) {
	l := &Local{Content: newStore(t)}
	cfg := &config{Version: 1, Layers: []layer{}, Records: []record{{Key: "sha256:aa", Layer: -1}}}
	dir := filepath.Join(t.TempDir(), "cache")
	for range 2 {
		desc, err := l.writeManifest(t.Context(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.writeLayout(dir, desc, nil); err != nil {
			t.Fatal(err)
		}
	}
	other := &Local{Content: newStore(t)}
	src, err := other.loadSource(t.Context(), Spec{Type: TypeLocal, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if layer, ok := src.recs["sha256:aa"]; !ok || layer != -1 {
		t.Errorf("records %v, want sha256:aa at -1", src.recs)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256")); len(entries) != 2 {
		t.Errorf("%d blobs in the layout, want the manifest and the config", len(entries))
	}
}

// TestImportMissing: a cache that is not there is a warning and leaves the
// cache as it was; a spec not valid for an import is an error.
func TestImportMissing(t *testing.T) {
	var warnings []string
	l := &Local{Content: newStore(t), Warn: func(w string) { warnings = append(warnings, w) }}
	var inner solver.Cache
	got, err := l.Import(t.Context(), []Spec{{Type: TypeLocal, Dir: filepath.Join(t.TempDir(), "none")}}, inner)
	if err != nil || got != inner || len(warnings) != 1 || !strings.Contains(warnings[0], "building without it") {
		t.Errorf("Import of a missing cache = %v, %v; warnings %q", got, err, warnings)
	}
	if _, err := l.Import(t.Context(), []Spec{{Type: TypeInline}}, inner); err == nil {
		t.Error("Import of type=inline: no error")
	}
}

func newStore(t *testing.T) *content.Store {
	t.Helper()
	s, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
