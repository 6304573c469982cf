package buildopts

import (
	"testing"

	"github.com/builder-dev/builder/cache/remote"
)

func TestParseCacheFlags(t *testing.T) {
	to, err := parseCacheSpecs([]string{"type=registry,ref=127.0.0.1:5000/c:1,mode=max", "type=local,dest=/tmp/c"}, true)
	if err != nil || len(to) != 2 || !to[0].Max || to[1].Dir != "/tmp/c" {
		t.Fatalf("--cache-to: %v %+v", err, to)
	}
	from, err := parseCacheSpecs([]string{"127.0.0.1:5000/c:1", "type=local,src=/tmp/c"}, false)
	if err != nil || len(from) != 2 || from[0].Type != remote.TypeRegistry || from[0].Ref != "127.0.0.1:5000/c:1" {
		t.Fatalf("--cache-from: %v %+v", err, from)
	}
	if _, err := parseCacheSpecs([]string{"type=local,dest=/x"}, false); err == nil {
		t.Error("--cache-from type=local,dest= accepted")
	}
}
