package dockerfile

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// bigDockerfile has 10 stages of 30 lines each: ARG, ENV, RUN, COPY,
// WORKDIR, LABEL and COPY --from the previous stage.
func bigDockerfile() string {
	var b strings.Builder
	b.WriteString("ARG VERSION=1.0\n")
	for s := 0; s < 10; s++ {
		if s == 0 {
			b.WriteString("FROM busybox AS s0\n")
		} else {
			fmt.Fprintf(&b, "FROM s%d AS s%d\n", s-1, s)
		}
		b.WriteString("ARG VERSION\n")
		for i := 0; i < 4; i++ {
			fmt.Fprintf(&b, "ENV S%d_V%d=${VERSION}-%d PATH=/opt/s%d/bin:$PATH\n", s, i, i, s)
			fmt.Fprintf(&b, "RUN echo building stage %d step %d && mkdir -p /opt/s%d/%d\n", s, i, s, i)
			fmt.Fprintf(&b, "COPY src/%d/ /opt/s%d/src/%d/\n", i, s, i)
			fmt.Fprintf(&b, "WORKDIR /opt/s%d/%d\n", s, i)
			fmt.Fprintf(&b, "LABEL stage%d.step%d=\"${VERSION}\"\n", s, i)
			if s > 0 {
				fmt.Fprintf(&b, "COPY --from=s0 /opt/s0/%d /opt/s%d/from0/%d\n", i, s, i)
			} else {
				fmt.Fprintf(&b, "RUN true %d\n", i)
			}
		}
		b.WriteString("USER 1000:1000\nEXPOSE 8080\nCMD [\"/bin/sh\"]\n")
		b.WriteString("# comment line\n\n")
	}
	return b.String()
}

func BenchmarkFrontend300Lines10Stages(b *testing.B) {
	df := []byte(bigDockerfile())
	if n := strings.Count(string(df), "\n"); n < 300 {
		b.Fatalf("Dockerfile has %d lines, want 300", n)
	}
	res := busybox()
	opt := Options{Source: df, TargetPlatform: amd64, Created: time.Unix(0, 0), ContextDir: "/ctx"}
	b.ReportAllocs()
	for b.Loop() {
		r, err := Build(b.Context(), opt, res)
		if err != nil || r.Root == nil {
			b.Fatal(err)
		}
	}
}
