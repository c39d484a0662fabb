package upstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// resetAppends fronts an emulator: every APPEND is answered with a TCP
// reset, everything else reaches the emulator.
func resetAppends(t *testing.T) *xfaketest.Server {
	t.Helper()
	x := xfake.New(xfake.Options{Seed: 50})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/append") {
			x.ServeHTTP(w, r)
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_ = conn.(*net.TCPConn).SetLinger(0)
		_ = conn.Close()
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = x.Close() })
	return &xfaketest.Server{URL: ts.URL, X: x, HTTP: ts}
}

// TestCallerErrorTexts checks the exact sentences callers get: one
// sentence, no URL of X, no "upstream:" prefix, no secret.
func TestCallerErrorTexts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := upstream.InitParams{MediaType: tsType, TotalBytes: 10 * kib}
	data := payload(11*kib, 51)

	t.Run("transport failure after retries", func(t *testing.T) {
		t.Parallel()
		srv := resetAppends(t)
		c := newClient(t, srv, func(cfg *upstream.Config) {
			cfg.MaxAttempts, cfg.Credentials = 3, upstream.BearerToken("secret-token-123")
		})
		_, err := upstream.UploadAll(ctx, c, nil, p, bytes.NewReader(data[:p.TotalBytes]))
		// net/http reports the read that met the reset, or the write of
		// the body that then met the socket it closed.
		want := "X did not answer APPEND of segment 0 after 3 attempts (connection reset)"
		if closed := strings.Replace(want, "reset", "closed", 1); err == nil || err.Error() != want && err.Error() != closed {
			t.Fatalf("err = %v\nwant  %s (or %q)", err, want, closed)
		}
		var te *upstream.TransportError
		if !errors.As(err, &te) || te.StatusCode() != http.StatusServiceUnavailable || te.Unwrap() == nil {
			t.Fatalf("err %T %+v", err, err)
		}
		// Operators keep the detail: the URL and the transport's text.
		var logs bytes.Buffer
		slog.New(slog.NewTextHandler(&logs, nil)).Error("upload failed", "error", te)
		if l := logs.String(); !strings.Contains(l, srv.URL) || !strings.Contains(l, "media_id=") || strings.Contains(l, "secret-token-123") {
			t.Fatalf("log line lacks the detail or leaks the token: %s", l)
		}
	})

	t.Run("X 4xx answer", func(t *testing.T) {
		t.Parallel()
		srv := xfaketest.New(t, xfake.Options{Seed: 52, MaxSegment: 32 * kib})
		c := newClient(t, srv, nil) // 64 KiB segments: X answers 413
		_, err := upstream.UploadAll(ctx, c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: 100 * kib},
			bytes.NewReader(payload(100*kib, 52)))
		var ae *upstream.APIError
		if !errors.As(err, &ae) || ae.StatusCode() != http.StatusRequestEntityTooLarge {
			t.Fatalf("err = %v", err)
		}
		// Which refused segment was the smallest depends on how many were
		// sent before the first 413 came back.
		if got, want := err.Error(), fmt.Sprintf("X answered APPEND of segment %d with HTTP 413: Request Entity Too Large; mediagw cannot cut the upload smaller: X refused a segment of ", ae.Segment); !strings.HasPrefix(got, want) ||
			!strings.HasSuffix(got, " bytes, and segments are cut no smaller than 1048576 bytes within 1000 segments") {
			t.Fatalf("err = %s\nwant  %s…", got, want)
		}
		var logs bytes.Buffer
		slog.New(slog.NewTextHandler(&logs, nil)).Error("upload failed", "error", err)
		if l := logs.String(); !strings.Contains(l, "error.http_status=413") || !strings.Contains(l, "error.media_id="+ae.MediaID) || ae.MediaID == "" {
			t.Fatalf("log line lacks the detail: %s", l)
		}
		// A 400 whose message echoes X's enumeration is cut.
		_, err = c.Begin(ctx, nil, upstream.InitParams{MediaType: "video/" + strings.Repeat("x", 240), TotalBytes: 10})
		const prefix = "X answered INIT with HTTP 400: "
		if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.HasSuffix(err.Error(), "…") || len(err.Error()) > len(prefix)+128+len("…") {
			t.Fatalf("err = %v (%d bytes)", err, len(fmt.Sprint(err)))
		}
	})

	t.Run("too many and too few bytes", func(t *testing.T) {
		t.Parallel()
		srv := xfaketest.New(t, xfake.Options{Seed: 53})
		c := newClient(t, srv, func(cfg *upstream.Config) { cfg.SegmentSize = 4 * kib })
		u, err := c.Begin(ctx, nil, p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = u.Write(data)
		if want := "received more than the declared 10240 bytes"; err == nil || err.Error() != want || !errors.Is(err, upstream.ErrTooManyBytes) {
			t.Fatalf("Write = %v, want %s", err, want)
		}
		u, err = c.Begin(ctx, nil, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.ReadFrom(bytes.NewReader(data[:9*kib])); err != nil {
			t.Fatal(err)
		}
		_, err = u.Finish(ctx)
		if want := "received 9216 of the declared 10240 bytes"; err == nil || err.Error() != want || !errors.Is(err, upstream.ErrShortUpload) {
			t.Fatalf("Finish = %v, want %s", err, want)
		}
	})

	t.Run("huge input is not echoed", func(t *testing.T) {
		t.Parallel()
		srv := xfaketest.New(t, xfake.Options{Seed: 54})
		c := newClient(t, srv, nil)
		huge := strings.Repeat("v", 900<<10)
		for _, ip := range []upstream.InitParams{
			{MediaType: huge, TotalBytes: 1},
			{MediaType: tsType, MediaCategory: huge, TotalBytes: 1},
			{MediaType: tsType, TotalBytes: 1, AdditionalOwners: []string{huge}},
		} {
			_, err := c.Begin(ctx, nil, ip)
			if !errors.Is(err, upstream.ErrInvalidParams) || len(err.Error()) > 160 {
				t.Fatalf("err (%d bytes) = %.200v", len(fmt.Sprint(err)), err)
			}
		}
		if _, err := c.Status(ctx, nil, huge); !errors.Is(err, upstream.ErrInvalidParams) || len(err.Error()) > 160 {
			t.Fatalf("Status err (%d bytes) = %.200v", len(fmt.Sprint(err)), err)
		}
	})

	t.Run("no upstream prefix", func(t *testing.T) {
		t.Parallel()
		for _, err := range []error{upstream.ErrTooManyBytes, upstream.ErrShortUpload, upstream.ErrSegmentTooLarge,
			upstream.ErrInvalidParams, upstream.ErrRateLimited, upstream.ErrAborted} {
			if strings.HasPrefix(err.Error(), "upstream") {
				t.Errorf("%q", err)
			}
		}
	})
}
