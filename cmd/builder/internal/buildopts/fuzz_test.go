package buildopts

import (
	"strings"
	"testing"
)

// FuzzFlags parses arbitrary -o, --cache-to, --cache-from, --secret and
// --build-context values. Beyond not panicking, what parses must make
// sense: a secret has an id and one source, an output a type, a build
// context a name. Seeds are in testdata/fuzz/FuzzFlags.
func FuzzFlags(f *testing.F) {
	for _, s := range []string{
		"type=registry,ref=localhost:5000/a:b,mode=max,compression=zstd",
		"type=local,dest=out",
		"type=oci,dest=-,name=a",
		"type=docker,dest=x.tar",
		"type=image,name=a:1,push=true",
		"type=inline",
		"id=tok,src=/run/secret",
		"id=tok,env=TOKEN,type=env",
		"base=docker-image://busybox",
		"name=oci-layout://dir@sha256:aa",
		`"type=local,dest=a,b"`,
		"type=tar,dest=-",
		"",
		"=",
		",,,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if outs, err := ParseOutputs([]string{v}); err == nil {
			for _, o := range outs {
				if o.Type == "" {
					t.Errorf("-o %q parsed to an output without a type: %+v", v, o)
				}
			}
		}
		for _, export := range []bool{true, false} {
			if specs, err := parseCacheSpecs([]string{v}, export); err == nil {
				for _, c := range specs {
					if c.Type == "" {
						t.Errorf("cache spec %q (export %v) parsed without a type: %+v", v, export, c)
					}
				}
			}
		}
		if secrets, err := parseSecrets([]string{v}); err == nil {
			for id, s := range secrets {
				if id == "" || (s.File == "") == (s.Env == "") {
					t.Errorf("--secret %q parsed to id %q with file %q and env %q", v, id, s.File, s.Env)
				}
			}
		}
		if ctxs, err := parseBuildContexts([]string{v}); err == nil {
			for k, val := range ctxs {
				if k == "" || val == "" || !strings.Contains(v, "=") {
					t.Errorf("--build-context %q parsed to %q=%q", v, k, val)
				}
			}
		}
	})
}
