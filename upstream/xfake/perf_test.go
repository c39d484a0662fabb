package xfake_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// Only lower bounds are asserted: a loaded machine may be slower, never
// faster.

func TestLatency(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{Latency: 200 * time.Millisecond})
	start := time.Now()
	wantStatus(t, c.postJSON("/2/media/upload/initialize", `{"media_type":"video/mp4","total_bytes":4}`), http.StatusOK)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("INIT took %v, want >= 200ms", d)
	}
}

func TestBandwidth(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{Bandwidth: 4_000_000})
	id := c.v2Init("video/mp4", 2_000_000, "tweet_video")
	start := time.Now()
	wantStatus(t, c.v2Append(id, 0, mp4(2_000_000)), http.StatusOK)
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("2 MB at 4 MB/s took %v, want >= 400ms", d)
	}

	x := xfake.New(xfake.Options{})
	defer x.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if x.Listener(l) != l {
		t.Error("Listener without Bandwidth should return the listener itself")
	}
}
