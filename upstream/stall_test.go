package upstream_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// TestSlowButSteadyAppendIsNotCut sends one 1 MiB APPEND through a
// 256 KiB/s connection: it takes about four seconds, 2.7 times the stall
// timeout, and must go through on its first attempt because bytes keep
// moving. (On loopback, with its 64 KiB segments, the peer's window opens
// in steps of about 100 KB, a few hundred milliseconds apart at this rate:
// that, not the timeout, is the test's margin.)
func TestSlowButSteadyAppendIsNotCut(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 60, Bandwidth: 256 << 10})
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.SegmentSize, cfg.StallTimeout, cfg.MaxAttempts = 1<<20, 1500*time.Millisecond, 1
	})
	data := payload(1<<20, 60)
	start := time.Now()
	m, err := upstream.UploadAll(context.Background(), c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
	checkMedia(t, srv, m, data, 1)
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("1 MiB through a 256 KiB/s cap took only %v: the cap did not apply and the test proves nothing", d)
	}
	if n := srv.X.Stats().Requests["append"]; n != 1 {
		t.Fatalf("%d APPENDs, want 1", n)
	}
}

// TestStalledAppendIsRetried holds the first APPEND without reading its
// body or answering, for 20 s, behind the emulator's bandwidth cap: the
// attempt must be abandoned after about the stall timeout and the retry
// must complete the upload, byte for byte.
func TestStalledAppendIsRetried(t *testing.T) {
	t.Parallel()
	x := xfake.New(xfake.Options{Seed: 61, Bandwidth: 4 << 20})
	var appends atomic.Int32
	release := make(chan struct{})
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/append") && appends.Add(1) == 1 {
			select { // stalled: the body stays unread, no answer comes
			case <-time.After(20 * time.Second):
			case <-release:
			}
			return
		}
		x.ServeHTTP(w, r)
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.Listener = x.Listener(l)
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) })
	t.Cleanup(func() { _ = x.Close() })
	srv := &xfaketest.Server{URL: ts.URL, X: x, HTTP: ts}

	const stall = 500 * time.Millisecond
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.SegmentSize, cfg.Parallelism, cfg.StallTimeout = 1<<20, 1, stall
	})
	data := payload(2<<20, 61)
	u, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := u.ReadFrom(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	m, err := u.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	checkMedia(t, srv, m, data, 2)
	if u.Retries() != 1 || appends.Load() != 3 {
		t.Fatalf("%d retries, %d APPENDs sent; want 1 and 3", u.Retries(), appends.Load())
	}
	// Two 1 MiB APPENDs at 4 MiB/s and the abandoned one: well under the
	// 20 s hold, and no sooner than the stall timeout.
	if took < stall || took > 10*time.Second {
		t.Fatalf("upload with one stalled APPEND took %v (stall timeout %v)", took, stall)
	}
	t.Logf("upload with one stalled APPEND took %v", took)
}

// TestStallOnEveryAttempt: the emulator stalls every request (30 s, then
// a dropped connection). Each attempt must be abandoned after the stall
// timeout, and the caller told so in one sentence.
func TestStallOnEveryAttempt(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 62, FaultRate: 1, FaultKinds: []xfake.FaultKind{xfake.FaultStall}, StallFor: 30 * time.Second})
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.StallTimeout, cfg.MaxAttempts = 300*time.Millisecond, 3 })
	start := time.Now()
	_, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: 10})
	took := time.Since(start)
	if want := "X did not answer INIT after 3 attempts (no progress for 300ms)"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	var te *upstream.TransportError
	if !errors.As(err, &te) || te.StatusCode() != http.StatusGatewayTimeout {
		t.Fatalf("err %T, want a TransportError with status 504", err)
	}
	if st := srv.X.Stats(); st.Faults[xfake.FaultStall] != 3 {
		t.Fatalf("%d stalls injected, want 3", st.Faults[xfake.FaultStall])
	}
	if took < 900*time.Millisecond || took > 10*time.Second {
		t.Fatalf("three stalled attempts took %v, want about 3 × 300 ms", took)
	}
}
