package imagestore

import "testing"

func TestCheckImageName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"demo", true},
		{"demo:1", true},
		{"localhost:5000/team/app:v1.2", true},
		{"registry.example.com/a_b/c-d/e__f/g.h:latest", true},
		{"app@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true},
		{"a/../b:1", false},
		{"a/./b", false},
		{"a//b", false},
		{"a/.b", false},
		{"a/b-", false},
		{"A/b", false},
		{"", false},
	} {
		if err := CheckName(tt.name); (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
