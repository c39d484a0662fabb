package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// TestSlowCallersDoNotStarveOthers: callers that hold a segment buffer and
// send nothing more (gRPC) or trickle (REST) while every buffer is out do
// not keep a legitimate upload waiting: their segments are spilled to disk
// and it goes through long before their idle timeout.
func TestSlowCallersDoNotStarveOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{}, "--max-in-flight=2", "--spill-after=100ms", "--idle-timeout=30s")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := media("video/mp4", 1<<20, 101)
	for range 3 {
		stream, err := e.client.Upload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(startMsg(&mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(slow))}))
		_ = stream.Send(chunkMsg(slow[:16]))
	}
	for range 3 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.httpURL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/media:upload?media_type=video/mp4 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(slow))
		go func() {
			for off := 0; off < len(slow) && ctx.Err() == nil; off += 100 {
				if _, err := conn.Write(slow[off : off+100]); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	waitFor(t, func() bool { return e.x.X.Stats().Requests["init"] >= 6 })
	data := media("video/mp4", 300<<10, 102)
	start := time.Now()
	resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(32<<10))
	if err != nil {
		t.Fatalf("the upload among slow callers: %v", err)
	}
	e.checkStored(resp.GetMediaId(), data)
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("the upload among slow callers took %s", d)
	}
	if !strings.Contains(scrape(t, e), "mediagw_upstream_segments_spilled_total") {
		t.Fatal("/metrics lacks mediagw_upstream_segments_spilled_total")
	}
}

// TestAdmissionIsBounded: past --max-uploads, an upload waits for a slot at
// most --buffer-wait, then is refused with ResourceExhausted and a retry
// delay (REST 429 with Retry-After), before anything of it is read.
func TestAdmissionIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{}, "--max-uploads=2", "--buffer-wait=300ms")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := media("video/mp4", 200<<10, 103)
	for range 2 {
		e.openUpload(ctx, data, 1000)
	}
	waitFor(t, func() bool { return e.x.X.Stats().Requests["init"] == 2 })
	_, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(32<<10))
	st := status.Convert(err)
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if codeOf(err) != "ResourceExhausted" || !strings.Contains(st.Message(), "limit of 2 concurrent uploads") || retry == nil {
		t.Fatalf("upload past --max-uploads: %v (retry %v), want ResourceExhausted with RetryInfo", err, retry)
	}
	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=video/mp4", bytes.NewReader(data))
	code, p, h := problemOf(t, req)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || p["code"] != "RESOURCE_EXHAUSTED" {
		t.Fatalf("REST upload past --max-uploads: HTTP %d %v (Retry-After %q)", code, p, h.Get("Retry-After"))
	}
	if n := e.x.X.Stats().Requests["init"]; n != 2 {
		t.Fatalf("X saw %d INITs, want only the 2 admitted uploads'", n)
	}
	cancel()
}
