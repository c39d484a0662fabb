// Package xfaketest starts an [xfake.Server] on a loopback port for a test,
// through [xfake.Server.Listener] so that the Bandwidth cap applies.
package xfaketest

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// Server is a running emulator.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL string
	// X is the emulator itself, for direct inspection.
	X *xfake.Server
	// HTTP is the underlying test server.
	HTTP *httptest.Server
}

// New starts an emulator configured by opts on 127.0.0.1 and registers its
// shutdown with tb.Cleanup.
func New(tb testing.TB, opts xfake.Options) *Server {
	tb.Helper()
	return NewWrapped(tb, opts, nil)
}

// NewWrapped is New with the emulator's handler passed through wrap (when
// not nil), for a test that stands in front of it to hold or follow
// requests. The listener, and so the Bandwidth cap, stay the emulator's.
func NewWrapped(tb testing.TB, opts xfake.Options, wrap func(http.Handler) http.Handler) *Server {
	tb.Helper()
	x := xfake.New(opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("xfaketest: listen: %v", err)
	}
	var h http.Handler = x
	if wrap != nil {
		h = wrap(x)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.Listener = x.Listener(l)
	ts.Start()
	// Cleanups run last-in first-out: the emulator closes first, which ends
	// stalled requests, so that the test server's Close does not wait on them.
	tb.Cleanup(ts.Close)
	tb.Cleanup(func() {
		if err := x.Close(); err != nil {
			tb.Errorf("xfaketest: close: %v", err)
		}
	})
	return &Server{URL: ts.URL, X: x, HTTP: ts}
}

// Media fetches GET /_xfake/media/{id} over HTTP and fails tb unless it
// answers 200.
func (s *Server) Media(tb testing.TB, id string) xfake.MediaInfo {
	tb.Helper()
	resp, err := http.Get(s.URL + "/_xfake/media/" + id)
	if err != nil {
		tb.Fatalf("xfaketest: inspect %s: %v", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("xfaketest: inspect %s: status %d", id, resp.StatusCode)
	}
	var info xfake.MediaInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		tb.Fatalf("xfaketest: inspect %s: %v", id, err)
	}
	return info
}
