package sandboxinit

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/builder-dev/builder/executor/sandboxinit/rootfs"
	"github.com/builder-dev/builder/snapshot"
)

// fullConfig sets every field of Config but the raw payload (Seccomp and
// the secrets' Data, which follow the frame).
func fullConfig() Config {
	layers := []snapshot.Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/a:/b", "ro"}}}
	return Config{
		Rootfs:   layers,
		Args:     []string{"/bin/sh", "-c", "echo 'ü'"},
		Env:      []string{"PATH=/bin", "EMPTY="},
		Cwd:      "/work",
		User:     "1000:1000",
		Hostname: "h",
		Mounts:   []rootfs.BindMount{{Source: "/host", Target: "/in", Readonly: true}},
		RunMounts: []rootfs.Mount{{
			Type: rootfs.MountSecret, Target: "/run/secrets/x", Source: "/src", Layers: layers,
			Size: 1 << 40, Readonly: true, UID: -1, GID: 7, Mode: 0o4755,
		}},
		Insecure:    true,
		StateDir:    "/state/run-1",
		SeccompSize: 8 * 977,
		Net:         Net{Private: true, Wait: true, Shared: true, DropNetRaw: true},
		ShmSize:     64 << 20,
		Ulimits:     []Ulimit{{Name: "nofile", Soft: -1, Hard: 1 << 20}},
	}
}

// unset names the fields of v (recursively, through structs and the first
// element of slices) that hold their zero value.
func unset(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			out = append(out, unset(v.Field(i), path+"."+v.Type().Field(i).Name)...)
		}
		return out
	case reflect.Slice:
		if v.Len() == 0 {
			return []string{path}
		}
		if v.Type().Elem().Kind() == reflect.Struct {
			return unset(v.Index(0), path+"[0]")
		}
		return nil
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

func TestConfigWire(t *testing.T) {
	cfg := fullConfig()
	// A field added to Config (or to the mount types) must be set above,
	// and then encoded, or this test fails.
	for _, f := range unset(reflect.ValueOf(cfg), "Config") {
		if f != "Config.Seccomp" && f != "Config.RunMounts[0].Data" {
			t.Errorf("fullConfig leaves %s unset: set it, and encode it in wire.go", f)
		}
	}
	frame := MarshalConfig(&cfg)
	var got Config
	if err := ReadConfig(bytes.NewReader(frame), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, cfg)
	}
	// Empty slices come back nil, as JSON's omitempty did.
	var empty Config
	if err := ReadConfig(bytes.NewReader(MarshalConfig(&Config{})), &empty); err != nil || !reflect.DeepEqual(empty, Config{}) {
		t.Errorf("empty config: %+v, %v", empty, err)
	}
	// Every truncation fails cleanly, never panics or succeeds.
	for n := range len(frame) {
		if err := ReadConfig(bytes.NewReader(frame[:n]), new(Config)); err == nil {
			t.Fatalf("config frame cut at %d of %d bytes decoded without error", n, len(frame))
		}
	}
	// A frame whose body lies about its lengths fails too.
	bad := append([]byte(nil), frame...)
	bad[4] = 0x7f // the rootfs count
	if err := ReadConfig(bytes.NewReader(bad), new(Config)); err == nil {
		t.Error("a frame with a bad count decoded without error")
	}
}

func TestReportWire(t *testing.T) {
	reps := []Report{{Stubs: []string{"proc", "etc/hosts"}}, {Error: "mounting /proc: EPERM", Errno: 1}}
	var stream []byte
	for i := range reps {
		stream = append(stream, MarshalReport(&reps[i])...)
	}
	r := bytes.NewReader(stream)
	for _, want := range reps {
		var got Report
		if err := ReadReport(r, &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ReadReport = %+v, %v; want %+v", got, err, want)
		}
	}
	if err := ReadReport(r, new(Report)); err != io.EOF {
		t.Errorf("ReadReport at the end = %v, want io.EOF", err)
	}
	if err := ReadReport(bytes.NewReader(stream[:3]), new(Report)); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("ReadReport of a cut length = %v, want an unexpected EOF", err)
	}
}
