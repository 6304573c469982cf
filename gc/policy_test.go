package gc

import "testing"

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"1024", 1024},
		{"0", 0},
		{"500MB", 500e6},
		{"2GiB", 2 << 30},
		{"1.5g", 1.5e9},
		{" 10 kib ", 10 << 10},
		{"3T", 3e12},
		{"7b", 7},
	} {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "MB", "-1", "5XB", "1..2G"} {
		if n, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, n)
		}
	}
}

func TestDefaultPolicyFromEnv(t *testing.T) {
	t.Setenv(KeepStorageEnv, "5GB")
	p, err := DefaultPolicy(t.TempDir())
	if err != nil || p.KeepStorage != 5e9 {
		t.Fatalf("DefaultPolicy with $%s=5GB = %+v, %v", KeepStorageEnv, p, err)
	}
	t.Setenv(KeepStorageEnv, "lots")
	if _, err := DefaultPolicy(t.TempDir()); err == nil {
		t.Fatal("DefaultPolicy with an invalid $" + KeepStorageEnv + " did not fail")
	}
	t.Setenv(KeepStorageEnv, "")
	p, err = DefaultPolicy(t.TempDir())
	if err != nil || p.KeepStorage <= 0 || p.KeepStorage > 10e9 {
		t.Fatalf("DefaultPolicy from the filesystem = %+v, %v; want 0 < limit <= 10GB", p, err)
	}
}
