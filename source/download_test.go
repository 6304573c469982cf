package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return "http://" + ln.Addr().String() + "/file"
}

func TestDownloadTimeouts(t *testing.T) {
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.Write(bytes.Repeat([]byte("x"), 1000))
		w.(http.Flusher).Flush()
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	for _, tt := range []struct{ name, url, want string }{
		{"accepts and never answers", silentServer(t), "waiting for the server: no answer for 300ms"},
		{"stalls mid-body", srv.URL + "/x", "downloading: no data from the server for 300ms after 1kB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Download(t.Context(), tt.url, io.Discard, DownloadOptions{Timeout: 300 * time.Millisecond})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Download = %v, want an error containing %q", err, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Download took %v with a 300ms timeout", d)
			}
		})
	}
}

// TestDownloadInterrupted cancels a download that waits for the server:
// the error says it was interrupted, and does not wrap context.Canceled
// (which the solver would not attribute to the step).
func TestDownloadInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err := Download(ctx, silentServer(t), io.Discard, DownloadOptions{})
	if err == nil || !strings.Contains(err.Error(), "interrupted after 0B (context canceled)") || errors.Is(err, context.Canceled) {
		t.Errorf("Download = %v, want an interruption that does not wrap context.Canceled", err)
	}
}

func TestDownloadProgress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4000")
		for range 4 {
			w.Write(bytes.Repeat([]byte("p"), 1000))
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	}))
	t.Cleanup(srv.Close)
	var log, body bytes.Buffer
	got, err := Download(t.Context(), srv.URL, &body, DownloadOptions{Progress: &log, Every: 20 * time.Millisecond})
	if err != nil || got.Size != 4000 || body.Len() != 4000 {
		t.Fatalf("Download = %+v, %v (%d bytes)", got, err, body.Len())
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "of 4kB (") || !strings.HasPrefix(lines[len(lines)-1], "downloaded 4kB in ") || !strings.HasSuffix(lines[len(lines)-1], "/s)") {
		t.Errorf("progress lines = %q, want lines with bytes, total and rate, then a final one", lines)
	}
}

func TestDownloadMaxSize(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			// No Content-Length: the bound applies while streaming.
			for range 10 {
				w.Write(bytes.Repeat([]byte("c"), 1000))
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Write(bytes.Repeat([]byte("l"), 10000))
	}))
	t.Cleanup(srv.Close)
	for _, p := range []string{"/length", "/chunked"} {
		var body bytes.Buffer
		_, err := Download(t.Context(), srv.URL+p, &body, DownloadOptions{MaxSize: 5000})
		if err == nil || !strings.Contains(err.Error(), "limit of 5kB") || body.Len() > 5001 {
			t.Errorf("Download(%s) = %v after %d bytes, want the limit refused within 5001 bytes", p, err, body.Len())
		}
	}
	if _, err := Download(t.Context(), srv.URL+"/length", io.Discard, DownloadOptions{MaxSize: 10000}); err != nil {
		t.Errorf("Download of exactly the limit = %v", err)
	}
}
