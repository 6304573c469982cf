package remote

import (
	"testing"
)

// FuzzCacheConfig reads arbitrary cache configs, as a --cache-from registry
// could serve them, both as a cache config proper and inline in an image
// config, validates them, and walks every record's chain as an import does.
// Seeds are in testdata/fuzz/FuzzCacheConfig.
func FuzzCacheConfig(f *testing.F) {
	f.Add([]byte(`{"version":1,"layers":[{"parent":-1,"blob":{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:aa","size":1},"diffID":"sha256:bb","base":true},{"parent":0,"empty":true}],"records":[{"key":"sha256:cc","layer":1},{"key":"sha256:dd","layer":-1}]}`), true)
	f.Add([]byte(`{"architecture":"amd64","dev.builder.cache.v1":{"version":1,"layers":[{"parent":0}],"records":[{"key":"k","layer":5}]}}`), false)
	f.Add([]byte(`{"version":1,"layers":[{"parent":-2},{"parent":1}],"records":[]}`), true)
	f.Fuzz(func(t *testing.T, raw []byte, proper bool) {
		mediaType := "application/vnd.oci.image.config.v1+json"
		if proper {
			mediaType = ConfigMediaType
		}
		cfg, err := parseConfig(mediaType, raw)
		if err != nil {
			return
		}
		recs, err := cfg.check()
		if err != nil {
			return
		}
		for key, top := range recs {
			chain := cfg.chain(top)
			if top >= 0 && (len(chain) == 0 || chain[len(chain)-1] != top) {
				t.Fatalf("record %s: chain %v does not end at its layer %d", key, chain, top)
			}
			for j, i := range chain {
				if j > 0 && cfg.Layers[i].Parent != chain[j-1] {
					t.Fatalf("record %s: chain %v is not linked by parents", key, chain)
				}
			}
		}
	})
}
