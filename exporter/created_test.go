package exporter

import (
	"fmt"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestFillCreated(t *testing.T) {
	at := func(s int64) *time.Time { v := time.Unix(s, 0).UTC(); return &v }
	for _, tc := range []struct {
		name string
		in   []*time.Time
		want []int64 // 0: nil
	}{
		// base entry, ENV, RUN, LABEL: the ENV takes the first new layer's time.
		{"metadata before the first layer", []*time.Time{at(1), nil, at(5), nil}, []int64{1, 5, 5, 5}},
		// BuildKit's rule counts the layers before the first untimed entry
		// as the base's, so an entry after them gets the next layer's time.
		{"metadata between layers", []*time.Time{at(1), at(5), nil, at(7), nil}, []int64{1, 5, 7, 7, 7}},
		{"metadata after a timed metadata entry", []*time.Time{at(1), nil, at(5), nil, at(7), nil}, []int64{1, 5, 5, 5, 7, 7}},
		// no layer of the build: the base image's last time.
		{"metadata only", []*time.Time{at(1), at(2), nil, nil}, []int64{1, 2, 2, 2}},
		{"no times at all", []*time.Time{nil, nil}, []int64{0, 0}},
	} {
		h := make([]ocispec.History, len(tc.in))
		for i, c := range tc.in {
			h[i].Created = c
		}
		fillCreated(h)
		got := make([]int64, len(h))
		for i := range h {
			if h[i].Created != nil {
				got[i] = h[i].Created.Unix()
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: fillCreated = %v, want %v", tc.name, got, tc.want)
		}
		if last := lastCreated(h); tc.want[len(tc.want)-1] != 0 && last.Unix() != tc.want[len(tc.want)-1] {
			t.Errorf("%s: lastCreated = %v", tc.name, last)
		}
	}
}
