package remote

import (
	"strings"
	"testing"

	"github.com/builder-dev/builder/exporter"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in     string
		export bool
		want   Spec
	}{
		{"type=registry,ref=r/c:1,mode=max,compression=zstd", true,
			Spec{Type: TypeRegistry, Ref: "r/c:1", Max: true, Compression: exporter.Zstd}},
		{"type=registry,ref=r/c:1", false, Spec{Type: TypeRegistry, Ref: "r/c:1", Compression: exporter.Gzip}},
		{"r/c:1", false, Spec{Type: TypeRegistry, Ref: "r/c:1", Compression: exporter.Gzip}},
		{"type=local,dest=/tmp/c", true, Spec{Type: TypeLocal, Dir: "/tmp/c", Compression: exporter.Gzip}},
		{"type=local,src=/tmp/c", false, Spec{Type: TypeLocal, Dir: "/tmp/c", Compression: exporter.Gzip}},
		{"type=local,src=/tmp/c,digest=sha256:abc", false,
			Spec{Type: TypeLocal, Dir: "/tmp/c", Digest: "sha256:abc", Compression: exporter.Gzip}},
		{"type=inline", true, Spec{Type: TypeInline, Compression: exporter.Gzip}},
		{"Type=local,dest=/c,mode=min,compression=uncompressed,ignore-error=true,oci-mediatypes=false,image-manifest=true", true,
			Spec{Type: TypeLocal, Dir: "/c", Compression: exporter.Uncompressed, IgnoreError: true}},
		{`type=registry,"ref=r/c:1",compression=gzip,compression-level=9,ignore-error=false`, true,
			Spec{Type: TypeRegistry, Ref: "r/c:1", Compression: exporter.Gzip, Level: 9}},
		{"type=registry,ref=r/c:1,mode=max,cache-mounts=true,cache-mounts-max-size=512m", true,
			Spec{Type: TypeRegistry, Ref: "r/c:1", Max: true, Compression: exporter.Gzip, CacheMounts: true, CacheMountsMaxSize: 512 << 20}},
		{"type=local,dest=/c,cache-mounts=true", true, Spec{Type: TypeLocal, Dir: "/c", Compression: exporter.Gzip, CacheMounts: true}},
	} {
		got, err := ParseSpec(tc.in, tc.export)
		if err != nil {
			t.Errorf("ParseSpec(%q, %v): %v", tc.in, tc.export, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseSpec(%q, %v) = %+v, want %+v", tc.in, tc.export, got, tc.want)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	for _, tc := range []struct {
		in     string
		export bool
		want   string
	}{
		{"type=inline", false, "type=inline is for --cache-to"},
		{"type=registry", true, "needs ref="},
		{"type=registry,ref=r,mode=all", true, "mode=all: want min or max"},
		{"type=local,src=/x", true, `unknown key "src"`},
		{"type=local,dest=/x", false, `unknown key "dest"`},
		{"type=local,digest=sha256:a", false, "needs src=DIR"},
		{"type=registry,ref=r,compression=lz4", true, `unknown compression "lz4"`},
		{"type=registry,ref=r,compression-level=high", true, "not a number"},
		{"type=registry,ref=r,ignore-error=maybe", true, "want true or false"},
		{"type=gha", false, `unknown cache type "gha"`},
		{"mode=max", true, "missing type="},
		{"type=registry,ref", false, "is not key=value"},
		{"type=registry,ref=r,cache-mounts=yes please", true, "want true or false"},
		{"type=registry,ref=r,cache-mounts-max-size=big", true, "want a size"},
		{"type=registry,ref=r,cache-mounts=true", false, `unknown key "cache-mounts"`},
		{"type=inline,cache-mounts=true", true, `unknown key "cache-mounts"`},
	} {
		_, err := ParseSpec(tc.in, tc.export)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSpec(%q, %v): %v, want an error with %q", tc.in, tc.export, err, tc.want)
		}
	}
}

// TestSpecCheck checks specs made by a caller, as Import and Export do
// before using them.
func TestSpecCheck(t *testing.T) {
	for _, tc := range []struct {
		spec   Spec
		export bool
		ok     bool
	}{
		{Spec{Type: TypeRegistry, Ref: "r/c:1"}, false, true},
		{Spec{Type: TypeLocal, Dir: "/c"}, true, true},
		{Spec{Type: TypeInline}, true, true},
		{Spec{Type: TypeInline}, false, false},
		{Spec{Type: TypeRegistry}, true, false},
		{Spec{Type: TypeLocal}, false, false},
		{Spec{}, true, false},
		{Spec{Type: TypeLocal, Dir: "/c", Compression: exporter.Zstd}, true, true},
		{Spec{Type: TypeLocal, Dir: "/c", Compression: "lz4"}, true, false},
	} {
		if err := tc.spec.check(tc.export); (err == nil) != tc.ok {
			t.Errorf("%+v.check(%v) = %v, want ok %v", tc.spec, tc.export, err, tc.ok)
		}
	}
}
