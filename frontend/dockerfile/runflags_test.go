package dockerfile

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/builder-dev/builder/llb"
)

func TestRunFlagsLowering(t *testing.T) {
	res, err := build(t, `FROM busybox AS src
RUN true
FROM busybox
ARG CACHE=gocache
WORKDIR /app
RUN --network=none --security=insecure \
    --mount=type=cache,target=.cache,id=$CACHE,sharing=locked,mode=0700,uid=1 \
    --mount=type=bind,from=src,source=/out,target=/in \
    --mount=type=bind,target=/ctx,rw \
    --mount=type=secret,id=tok \
    --mount=type=secret,id=envonly,env=TOKEN \
    --mount=type=ssh \
    --mount=type=ssh,id=other,required \
    --mount=type=tmpfs,target=/tmp,size=1m \
    true
`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	op, ok := res.Root.Op().(llb.ExecOp)
	if !ok {
		t.Fatalf("root is %s, want exec", res.Root.Op().Kind())
	}
	if op.Network != llb.NetworkNone || op.Security != llb.SecurityInsecure {
		t.Errorf("network, security = %q, %q", op.Network, op.Security)
	}
	u := func(v uint32) *uint32 { return &v }
	want := []llb.ExecMount{
		{Type: "cache", Target: "/app/.cache", ID: "gocache", Sharing: "locked", Mode: u(0o700), UID: u(1)},
		{Type: "bind", Target: "/in", Input: 1, Source: "/out", Readonly: true},
		{Type: "bind", Target: "/ctx", Input: 2},
		{Type: "secret", Target: "/run/secrets/tok", ID: "tok", Readonly: true},
		{Type: "secret", ID: "envonly", Env: "TOKEN", Readonly: true},
		{Type: "ssh", Target: "/run/buildkit/ssh_agent.0", ID: "default", Readonly: true},
		{Type: "ssh", Target: "/run/buildkit/ssh_agent.1", ID: "other", Readonly: true, Required: true},
		{Type: "tmpfs", Target: "/tmp", Size: 1 << 20},
	}
	got, _ := json.Marshal(op.Mounts)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Errorf("mounts =\n%s\nwant\n%s", got, wantJSON)
	}
	in := res.Root.Inputs()
	if len(in) != 3 || in[1].Op().Kind() != "exec" || in[2].Op().Kind() != "local" {
		t.Errorf("inputs = %d, want rootfs, the src stage and the context", len(in))
	}
	found := false
	for _, kv := range op.Env {
		found = found || kv == "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"
	}
	if !found {
		t.Errorf("env %q has no SSH_AUTH_SOCK", op.Env)
	}

	// The network mode changes the vertex.
	a, _ := build(t, "FROM busybox\nRUN true\n", Options{})
	b, _ := build(t, "FROM busybox\nRUN --network=none true\n", Options{})
	if a.Root.Digest() == b.Root.Digest() {
		t.Error("RUN and RUN --network=none have the same digest")
	}

	// The build's network is the default of RUN without --network (or
	// with --network=default); an explicit mode wins.
	c, _ := build(t, "FROM busybox\nRUN true\nRUN --network=default true\nRUN --network=none true\n", Options{Network: llb.NetworkHost})
	var nets []string
	llb.Walk([]*llb.Vertex{c.Root}, func(v *llb.Vertex) error {
		if op, ok := v.Op().(llb.ExecOp); ok {
			nets = append(nets, op.Network)
		}
		return nil
	})
	slices.Sort(nets)
	if want := []string{"host", "host", "none"}; !slices.Equal(nets, want) {
		t.Errorf("RUN networks with the build's network host = %q, want %q", nets, want)
	}
}

func TestRunFlagsErrors(t *testing.T) {
	tests := []struct{ df, want string }{
		{"FROM busybox\nRUN --mount=type=cache true\n", "target is required"},
		{"FROM busybox\nRUN --mount=type=bind,from=nope,target=/x true\n", "Dockerfile:2"},
		{"FROM busybox\nRUN --mount=type=nope,target=/x true\n", "unsupported mount type"},
		{"FROM busybox\nRUN --network=bridge true\n", "network"},
		{"FROM busybox\nRUN --device=/dev/fuse true\n", "not supported yet"},
	}
	for _, tt := range tests {
		_, err := build(t, tt.df, Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Build(%q) error = %v, want it to contain %q", tt.df, err, tt.want)
		}
	}
}
