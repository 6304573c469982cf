package faultproxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// upstream serves 1000 bytes of 'a' at any path, and records the basic
// auth user of each request.
func upstream(t *testing.T, users *[]string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _, _ := r.BasicAuth()
		*users = append(*users, u)
		w.Header().Set("Content-Length", "1000")
		w.Write(bytes.Repeat([]byte("a"), 1000))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func get(t *testing.T, url, auth string) (int, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func TestFaults(t *testing.T) {
	var users []string
	p := New(upstream(t, &users))
	t.Cleanup(p.Close)
	base := "http://" + p.Addr + "/v2/r/blobs/x"

	p.Add(Fault{Kind: Status, Status: 503, Times: 1})
	if code, _, _ := get(t, base, ""); code != 503 {
		t.Errorf("first request: %d, want 503", code)
	}
	if code, b, err := get(t, base, ""); code != 200 || len(b) != 1000 || err != nil {
		t.Errorf("second request: %d, %d bytes, %v", code, len(b), err)
	}

	p.Clear()
	p.ResetCounters()
	p.Add(Fault{Kind: Reset, After: 100})
	if _, b, err := get(t, base, ""); err == nil || len(b) != 100 {
		t.Errorf("reset after 100 bytes: got %d bytes, %v", len(b), err)
	}
	if p.Bytes() != 100 || p.Injected() != 1 {
		t.Errorf("counters: %d bytes, %d faults", p.Bytes(), p.Injected())
	}

	p.Clear()
	p.Add(Fault{Kind: Corrupt, After: 5})
	if _, b, _ := get(t, base, ""); len(b) != 1000 || b[5] == 'a' || b[4] != 'a' {
		t.Errorf("corrupt at 5: %q", b[:8])
	}
}

func TestTokenAuth(t *testing.T) {
	var users []string
	p := New(upstream(t, &users))
	t.Cleanup(p.Close)
	p.TokenAuth("u", "pw", 2)
	base := "http://" + p.Addr + "/v2/r/manifests/1"
	req, _ := http.NewRequest(http.MethodGet, base, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.Contains(ch, `realm="http://`+p.Addr+`/token"`) || !strings.Contains(ch, "repository:r:pull,push") {
		t.Fatalf("without a token: %d %q", resp.StatusCode, ch)
	}
	req, _ = http.NewRequest(http.MethodGet, "http://"+p.Addr+"/token", nil)
	req.SetBasicAuth("u", "pw")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	for i, want := range []int{200, 200, 401} {
		if code, _, _ := get(t, base, "Bearer "+tok.Token); code != want {
			t.Errorf("request %d with the token: %d, want %d", i+1, code, want)
		}
	}
	if len(users) != 2 || users[0] != "u" {
		t.Errorf("upstream saw users %q, want basic auth u twice", users)
	}
	if p.TokensIssued() != 1 {
		t.Errorf("%d tokens issued", p.TokensIssued())
	}
}
