package mountcache

import (
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const testMountKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestCacheMountConfigCaps: an imported config whose cache mounts break
// the caps is refused as a whole, like any malformed cache config.
func TestCacheMountConfigCaps(t *testing.T) {
	part := Part{Blob: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("x"), Size: 1}, DiffID: digest.FromString("y"), Size: 10}
	huge := part
	huge.Size = MaxRestore
	tests := map[string][]Entry{
		"bad key":      {{Key: "../x", Parts: []Part{part}}},
		"no parts":     {{Key: testMountKey}},
		"too big":      {{Key: testMountKey, Parts: []Part{part, huge}}},
		"too many":     make([]Entry, MaxMounts+1),
		"not gzip tar": {{Key: testMountKey, Parts: []Part{{Blob: ocispec.Descriptor{MediaType: "text/plain", Digest: part.Blob.Digest}, DiffID: part.DiffID}}}},
	}
	for name, cms := range tests {
		if _, err := Check(cms); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if m, err := Check([]Entry{{Key: testMountKey, Parts: []Part{part}}}); err != nil || m[testMountKey] == nil {
		t.Errorf("a valid cache mount: %v, %v", m, err)
	}
}
