package history

import (
	"reflect"
	"testing"
)

func TestRedactArgs(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"builder", "build", "--secret", "id=a,src=/k", "."}, []string{"builder", "build", "--secret", "****", "."}},
		{[]string{"build", "--secret=id=a,env=X", "--ssh=default"}, []string{"build", "--secret=****", "--ssh=****"}},
		{[]string{"build", "--build-arg", "DB_PASSWORD=x", "--build-arg=VERSION=1", "--build-arg=GH_TOKEN=y"},
			[]string{"build", "--build-arg", "DB_PASSWORD=****", "--build-arg=VERSION=1", "--build-arg=GH_TOKEN=****"}},
		{[]string{"build", "--build-arg", "HOME"}, []string{"build", "--build-arg", "HOME"}},
	} {
		if got := RedactArgs(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("RedactArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
