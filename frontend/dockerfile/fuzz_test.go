package dockerfile

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// fuzzLower lowers src against a base image with the given config
// and checks what every successful lowering must give. Errors are fine:
// only panics, hangs and nonsense results are bugs.
func fuzzLower(t *testing.T, src []byte, base ResolvedImage, target string) {
	res, err := Build(t.Context(), Options{
		Source:         src,
		ContextDir:     "/nonexistent-context",
		Target:         target,
		BuildArgs:      map[string]string{"A": "1"},
		TargetPlatform: amd64,
		Created:        time.Unix(0, 0),
	}, fakeResolver{"busybox": base, "base": base})
	if err != nil {
		if err.Error() == "" {
			t.Fatal("Build returned an error with no message")
		}
		return
	}
	if res.Root != nil {
		if err := res.Root.Digest().Validate(); err != nil {
			t.Fatalf("lowered graph has a bad digest: %v", err)
		}
	}
}

// FuzzBuild parses and lowers arbitrary Dockerfiles. Seeds are in
// testdata/fuzz/FuzzBuild (go test runs them as ordinary tests).
func FuzzBuild(f *testing.F) {
	for _, s := range []string{
		"FROM busybox\nRUN echo hi\n",
		"ARG A=busybox\nFROM $A AS one\nCOPY --from=one / /x\nFROM one\nRUN --mount=type=cache,target=/c true\n",
		"FROM scratch\nADD https://example.invalid/x /y\nCOPY <<EOF /f\nhello\nEOF\n",
		"# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\nRUN echo `\n  hi\nONBUILD RUN x\nHEALTHCHECK CMD true\nSHELL [\"/bin/sh\",\"-c\"]\n",
		"FROM busybox\nENV A=${B:-x} C=${A:+y}\nWORKDIR $A\nUSER 1:1\nEXPOSE 80/tcp\nVOLUME /v\nLABEL a=b\nSTOPSIGNAL 9\nENTRYPOINT [\"a\"]\nCMD b\n",
	} {
		f.Add([]byte(s), "")
	}
	base := busybox()["busybox"]
	f.Fuzz(func(t *testing.T, src []byte, target string) {
		if len(src) > 64<<10 {
			return
		}
		fuzzLower(t, src, base, target)
	})
}

// FuzzImageConfig feeds arbitrary base image configs (as a registry could
// send them) through JSON decoding and a Dockerfile that uses every field a
// config brings in: ENV, WORKDIR, USER, SHELL, ONBUILD triggers.
func FuzzImageConfig(f *testing.F) {
	f.Add([]byte(`{"config":{"Env":["PATH=/bin"],"Cmd":["sh"],"OnBuild":["RUN echo x"]},"rootfs":{"type":"layers","diff_ids":[]}}`))
	f.Add([]byte(`{"config":{"WorkingDir":"/w","User":"1:2","Shell":["/bin/ash","-c"],"Healthcheck":{"Test":["CMD","true"]}}}`))
	f.Add([]byte(`{"config":{"OnBuild":["COPY --from=0 / /", "ONBUILD RUN x", "ARG X=${Y"]}}`))
	const df = "FROM base\nRUN echo $PATH\nWORKDIR rel\nCOPY . .\nUSER nobody\nFROM base AS two\nCOPY --from=0 / /\n"
	f.Fuzz(func(t *testing.T, raw []byte) {
		var img Image
		if err := json.Unmarshal(raw, &img); err != nil {
			return
		}
		if len(strings.Join(img.Config.OnBuild, "")) > 64<<10 {
			return
		}
		fuzzLower(t, []byte(df), ResolvedImage{Digest: busybox()["busybox"].Digest, Config: img}, "")
	})
}
