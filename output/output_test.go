package output_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/output"
)

func TestParseOutput(t *testing.T) {
	tests := []struct {
		in   string
		want output.Spec
		err  string
	}{
		{in: "type=oci,dest=a.tar", want: output.Spec{Type: "oci", Dest: "a.tar"}},
		{in: `type=image,"name=a:1,b:2",push=true,compression=zstd,compression-level=3,force-compression=true`, want: output.Spec{Type: "image", Names: []string{"a:1", "b:2"}, Push: true, Compression: "zstd", CompressionLevel: 3, ForceCompression: true}},
		{in: "type=registry,name=r/a,oci-mediatypes=false,rewrite-timestamp=true", want: output.Spec{Type: "registry", Names: []string{"r/a"}, MediaTypes: "docker"}},
		{in: "type=oci,dest=dir,tar=false", want: output.Spec{Type: "oci", Dest: "dir", Directory: true}},
		{in: "type=docker,dest=d.tar,name=x", want: output.Spec{Type: "docker", Dest: "d.tar", Names: []string{"x"}}},
		{in: "type=local,dest=out", want: output.Spec{Type: "local", Dest: "out"}},
		{in: "out", want: output.Spec{Type: "local", Dest: "out"}},
		{in: "type=tar,dest=fs.tar", want: output.Spec{Type: "tar", Dest: "fs.tar"}},
		{in: "type=image,store=false,rewrite-timestamp=false,oci-mediatypes=true", want: output.Spec{Type: "image", NoStore: true, KeepTimestamps: true, MediaTypes: "oci"}},
		{in: "type=docker,dest=d.tar,compression=uncompressed,compression-level=", want: output.Spec{Type: "docker", Dest: "d.tar", Compression: "uncompressed"}},
		{in: "type=registry,store=false", err: `unknown key "store"`},
		{in: "type=oci,dest=a,tar=maybe", err: "want true or false"},
		{in: "dest=a.tar", err: "missing type="},
		{in: "type=nope,dest=x", err: `unknown output type "nope"`},
		{in: "type=oci", err: "needs dest="},
		{in: "type=docker", err: "no daemon"},
		{in: "type=local,dest=x,name=y", err: "takes only dest="},
		{in: "type=image,compression=lz4", err: "unknown compression"},
		{in: "type=image,compression=zstd,oci-mediatypes=false", err: "needs oci-mediatypes=true"},
		{in: "type=image,push=maybe", err: "want true or false"},
		{in: "type=image,compression-level=x", err: "not a number"},
		{in: "type=image,bogus=1", err: `unknown key "bogus"`},
	}
	for _, tc := range tests {
		got, err := output.Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseOutput(%q) = %+v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseOutput(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestCheck refuses outputs made in code whose fields do not go together,
// as Parse refuses their text.
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		spec output.Spec
		err  string
	}{
		{output.Spec{Type: "local", Dest: "x", Names: []string{"y"}}, "takes only dest="},
		{output.Spec{Type: "tar", Dest: "x", Compression: "zstd"}, "takes only dest="},
		{output.Spec{Type: "oci", Dest: "x", Push: true}, `unknown key "push"`},
		{output.Spec{Type: "registry", NoStore: true}, `unknown key "store"`},
		{output.Spec{Type: "image", Directory: true}, `unknown key "tar"`},
		{output.Spec{Type: "image", Dest: "x"}, "takes no dest="},
		{output.Spec{Type: "oci"}, "needs dest="},
		{output.Spec{Type: "docker", Dest: "d.tar", Compression: "zstd"}, "needs oci-mediatypes=true"},
		{output.Spec{Type: "image", MediaTypes: "v1"}, "want oci or docker"},
		{output.Spec{Type: "nope"}, "unknown output type"},
	} {
		if err := tc.spec.Check(); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v.Check() = %v, want an error containing %q", tc.spec, err, tc.err)
		}
	}
	for _, ok := range []output.Spec{
		{Type: "image"},
		{Type: "registry", Names: []string{"r/a"}, Push: true},
		{Type: "oci", Dest: "x", Directory: true, Compression: "zstd", CompressionLevel: 3},
		{Type: "docker", Dest: "d.tar", MediaTypes: "oci", Compression: "zstd"},
		{Type: "local", Dest: "x"},
	} {
		if err := ok.Check(); err != nil {
			t.Errorf("%+v.Check() = %v, want nil", ok, err)
		}
	}
}

func TestImageOptions(t *testing.T) {
	epoch := time.Unix(1700000000, 0).UTC()
	for _, tc := range []struct {
		spec             output.Spec
		compression      string
		docker, hasEpoch bool
	}{
		{output.Spec{Type: "image"}, exporter.Gzip, false, true},
		{output.Spec{Type: "docker", Dest: "d.tar"}, exporter.Gzip, true, true},
		{output.Spec{Type: "docker", Dest: "d.tar", MediaTypes: "oci"}, exporter.Gzip, false, true},
		{output.Spec{Type: "oci", Dest: "x", MediaTypes: "docker", Compression: "uncompressed"}, exporter.Uncompressed, true, true},
		{output.Spec{Type: "registry", KeepTimestamps: true, Compression: "zstd"}, exporter.Zstd, false, false},
	} {
		o, err := tc.spec.ImageOptions(&epoch)
		if err != nil || o.Compression != tc.compression || o.DockerMediaTypes != tc.docker || (o.SourceDateEpoch != nil) != tc.hasEpoch {
			t.Errorf("%+v.ImageOptions() = %+v, %v; want compression %s, docker media types %v, epoch %v", tc.spec, o, err, tc.compression, tc.docker, tc.hasEpoch)
		}
	}
}
