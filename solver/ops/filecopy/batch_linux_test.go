//go:build linux

package filecopy

import (
	"fmt"
	"slices"
	"testing"
)

func TestBatches(t *testing.T) {
	jobsOf := func(sizes ...int64) []fileJob {
		var js []fileJob
		for i, s := range sizes {
			j := fileJob{name: fmt.Sprint(i)}
			j.st.Size = s
			js = append(js, j)
		}
		return js
	}
	many := make([]int64, 200)
	for i := range many {
		many[i] = 2500
	}
	const mb = 10 << 20
	for _, tc := range []struct {
		name  string
		sizes []int64
		n     int
		want  []int // files in each batch
	}{
		{"none", nil, 4, []int{0}},
		{"few small files: one batch", []int64{10, 20, 30}, 4, []int{3}},
		{"one worker", many, 1, []int{200}},
		{"many small files: equal batches", many, 4, []int{50, 50, 50, 50}},
		{"big files each on a worker", []int64{mb, mb, mb, mb}, 4, []int{1, 1, 1, 1}},
		{"more workers than files", []int64{mb, mb}, 4, []int{1, 1}},
		{"one big file and many small ones", append([]int64{4 * mb}, many...), 2, []int{1, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jobs := jobsOf(tc.sizes...)
			parts := batches(jobs, tc.n)
			var got []int
			var names []string
			for _, p := range parts {
				got = append(got, len(p))
				for _, j := range p {
					names = append(names, j.name)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("batches(%d files, %d) sizes = %v, want %v", len(jobs), tc.n, got, tc.want)
			}
			var want []string
			for _, j := range jobs {
				want = append(want, j.name)
			}
			if !slices.Equal(names, want) {
				t.Errorf("batches(%d files, %d) = %v, want every file once, in order", len(jobs), tc.n, names)
			}
		})
	}
}
