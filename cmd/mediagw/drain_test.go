package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// TestDrainLetsUploadsFinish starts shutting mediagw down in the middle of
// an upload: the upload still completes, byte-exact, and serve returns.
func TestDrainLetsUploadsFinish(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{}, "--drain-timeout=20s")
	data := media("video/mp4", 300<<10, 31)
	stream := e.openUpload(context.Background(), data, 100<<10)
	waitFor(t, func() bool { return e.x.X.Stats().Requests["append"] > 0 })

	e.cancel() // SIGTERM
	// Draining: /readyz turns 503 once mediagw stopped taking calls.
	waitFor(t, func() bool {
		res, err := http.Get(e.adminURL + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusServiceUnavailable
	})
	if err := stream.Send(chunkMsg(data[100<<10:])); err != nil {
		t.Fatalf("send during drain: %v", err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("upload in flight at shutdown: %v", err)
	}
	e.checkStored(resp.GetMediaId(), data)
	e.waitServed("serve did not return after the last upload finished")
}

// TestDrainTimeoutCancels holds an upload open past the drain timeout: it
// is cancelled and mediagw stops.
// TestDrainTimeoutCancels holds uploads open past the drain timeout, over
// gRPC and over REST: each caller gets Unavailable (REST: a 503 problem,
// not a reset connection) saying mediagw is shutting down, and mediagw
// stops.
func TestDrainTimeoutCancels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{}, "--drain-timeout=300ms")
	data := media("video/mp4", 300<<10, 32)
	stream := e.openUpload(context.Background(), data, 100<<10)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.httpURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/media:upload?media_type=video/mp4 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(data))
	_, _ = conn.Write(data[:100<<10])
	waitFor(t, func() bool { return e.x.X.Stats().Requests["init"] == 2 })
	start := time.Now()
	e.cancel()
	e.waitServed("serve did not return after the drain timeout")
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("stopped after %v, before the drain timeout", d)
	}
	err = stream.RecvMsg(&mediagwv1.UploadResponse{})
	if codeOf(err) != "Unavailable" || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("gRPC upload cut off by the drain timeout: %v, want Unavailable (shutting down)", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("REST upload cut off by the drain timeout got no answer: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "shutting down") {
		t.Fatalf("REST upload cut off by the drain timeout: HTTP %d %s, want a 503 problem", res.StatusCode, b)
	}
	waitFor(t, func() bool { return len(e.uploadLogs()) == 2 })
	for _, l := range e.uploadLogs() {
		if l["outcome"] != "Unavailable" {
			t.Fatalf("upload log %v", l)
		}
	}
}

// TestIdleUploadReleasesItsBuffer stalls an upload that holds the only
// segment buffer (--max-in-flight=1): after --idle-timeout it fails with
// DeadlineExceeded, and the next upload gets the buffer.
func TestIdleUploadReleasesItsBuffer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{}, "--max-in-flight=1", "--idle-timeout=500ms")
	data := media("video/mp4", 200<<10, 33)
	stalled := e.openUpload(context.Background(), data, 1000) // a partly filled buffer, then silence
	waitFor(t, func() bool { return e.x.X.Stats().Requests["init"] == 1 })

	start := time.Now()
	other := media("video/mp4", 100<<10, 34)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := e.upload(ctx, &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(other))}, other, fixed(32<<10))
	if err != nil {
		t.Fatalf("upload behind a stalled one: %v", err)
	}
	e.checkStored(resp.GetMediaId(), other)
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("the second upload finished after %v, before the stalled one timed out: the buffer bound did not hold", d)
	}
	_, err = stalled.CloseAndRecv()
	if codeOf(err) != "DeadlineExceeded" || !strings.Contains(err.Error(), "no data from the caller for 500ms") {
		t.Fatalf("stalled upload: %v, want DeadlineExceeded naming the idle timeout", err)
	}
}

// TestDrainEndsWatches keeps a status watch open at SIGTERM: shutdown does
// not wait the drain timeout for it, and the watcher is told Unavailable.
func TestDrainEndsWatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{ProcessingTime: time.Hour}, "--drain-timeout=20s")
	data := media("video/mp4", 64<<10, 35)
	resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := e.client.WatchStatus(context.Background(), &mediagwv1.WatchStatusRequest{MediaId: resp.GetMediaId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first state: %v", err)
	}
	start := time.Now()
	e.cancel()
	e.waitServed("shutdown waited for the open watch")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v with a watch open", d)
	}
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	if codeOf(err) != "Unavailable" || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("watch ended with %v, want Unavailable: shutting down", err)
	}
}
