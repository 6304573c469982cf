package passwd

import (
	"slices"
	"strings"
	"testing"
)

func TestResolveUser(t *testing.T) {
	const passwd = `# comment
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
broken line
+nis:x:5:5::/:
`
	const group = `root:x:0:
app:x:1000:
extra:x:2000:app, other
wheel:x:10:other
`
	tests := []struct {
		spec    string
		passwd  string
		want    User
		wantErr string
	}{
		{spec: "", want: User{0, 0, []int{0}, "/root"}},
		{spec: "root", want: User{0, 0, []int{0}, "/root"}},
		{spec: "app", want: User{1000, 1000, []int{1000, 2000}, "/home/app"}},
		{spec: "1000", want: User{1000, 1000, []int{1000, 2000}, "/home/app"}},
		{spec: "app:wheel", want: User{1000, 10, []int{10, 2000}, "/home/app"}},
		{spec: "1000:2000", want: User{1000, 2000, []int{2000}, "/home/app"}},
		{spec: "4242", want: User{4242, 0, []int{0}, "/"}},
		{spec: "4242:77", want: User{4242, 77, []int{77}, "/"}},
		{spec: "0", passwd: "-", want: User{0, 0, []int{0}, "/"}}, // no passwd file
		{spec: "app", passwd: "-", wantErr: `user "app" not found in /etc/passwd`},
		{spec: "nobody", wantErr: `user "nobody" not found in /etc/passwd`},
		{spec: "app:nogroup", wantErr: `group "nogroup" not found in /etc/group`},
		{spec: ":app", wantErr: "missing user"},
		{spec: "-1", wantErr: `user "-1" not found`},
		{spec: "99999999999", wantErr: "not found"},
	}
	for _, tt := range tests {
		var pr, gr = strings.NewReader(passwd), strings.NewReader(group)
		var got User
		var err error
		if tt.passwd == "-" {
			got, err = ResolveUser(tt.spec, nil, nil)
		} else {
			got, err = ResolveUser(tt.spec, pr, gr)
		}
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ResolveUser(%q) = %v, %v; want error containing %q", tt.spec, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.UID != tt.want.UID || got.GID != tt.want.GID || !slices.Equal(got.Groups, tt.want.Groups) || got.Home != tt.want.Home {
			t.Errorf("ResolveUser(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
}
