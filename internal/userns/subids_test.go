package userns

import (
	"reflect"
	"strings"
	"testing"
)

func TestUsableAndMapArgs(t *testing.T) {
	ranges := []IDRange{{100000, 32768}, {100000, 32768}, {110000, 10}, {300000, 32768}}
	got := Usable(ranges)
	want := []IDRange{{100000, 32768}, {300000, 32768}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Usable = %v, want %v (overlapping ranges left out)", got, want)
	}
	if n := Total(got); n != 65536 {
		t.Errorf("Total = %d, want 65536", n)
	}
	// Own id at 0, then the ranges back to back: container ids 1-32768
	// and 32769-65536.
	args := strings.Join(mapArgs(1000, got), " ")
	if args != "0 1000 1 1 100000 32768 32769 300000 32768" {
		t.Errorf("mapArgs = %q", args)
	}
	many := make([]IDRange, 400)
	for i := range many {
		many[i] = IDRange{Start: 100000 + 10*i, Count: 10}
	}
	if n := len(Usable(many)); n != maxExtents {
		t.Errorf("Usable kept %d ranges, want the kernel's limit less one, %d", n, maxExtents)
	}
}
