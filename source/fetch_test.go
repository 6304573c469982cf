package source

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestFetch(t *testing.T) {
	lm := time.Date(2022, 2, 3, 4, 5, 6, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/dated":
			w.Header().Set("Last-Modified", lm.Format(http.TimeFormat))
			io.WriteString(w, "dated")
		case "/plain":
			io.WriteString(w, "plain")
		case "/redirect":
			http.Redirect(w, r, "/plain", http.StatusFound)
		case "/short":
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "short")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tests := []struct {
		path, body, err string
		lastModified    time.Time
	}{
		{path: "/dated", body: "dated", lastModified: lm},
		{path: "/plain", body: "plain"},
		{path: "/redirect", body: "plain"},
		{path: "/short", err: "unexpected EOF"},
		{path: "/missing", err: "404 Not Found"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		got, err := Fetch(t.Context(), srv.URL+tt.path, &buf)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Fetch(%s) error = %v, want %q", tt.path, err, tt.err)
			}
			continue
		}
		if err != nil || buf.String() != tt.body || !got.LastModified.Equal(tt.lastModified) || got.Size != int64(len(tt.body)) {
			t.Errorf("Fetch(%s) = %+v %q %v; want %q modified %v", tt.path, got, buf.String(), err, tt.body, tt.lastModified)
		}
	}
	if _, err := Fetch(t.Context(), "ftp://127.0.0.1/x", io.Discard); err == nil {
		t.Error("Fetch of an ftp URL succeeded")
	}
}
