package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

func codeOf(err error) string { return status.Code(err).String() }

func startMsg(s *mediagwv1.UploadStart) *mediagwv1.UploadRequest {
	return &mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Start{Start: s}}
}

func chunkMsg(b []byte) *mediagwv1.UploadRequest {
	return &mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Chunk{Chunk: b}}
}

// TestBadUploads sends each kind of bad upload over gRPC and checks the
// exact code and message, and that nothing was INITed at X for input that
// can be refused up front.
func TestBadUploads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	mp4 := media("video/mp4", 100<<10, 1)
	png := media("image/png", 1000, 2)
	cases := []struct {
		name     string
		msgs     []*mediagwv1.UploadRequest
		code     string
		msg      string
		reachesX bool
	}{
		{name: "empty stream", code: "InvalidArgument", msg: "the stream ended before its start message"},
		{name: "chunk first", msgs: []*mediagwv1.UploadRequest{chunkMsg(mp4[:10])}, code: "InvalidArgument", msg: "the first message must be start"},
		{name: "unknown media type", msgs: []*mediagwv1.UploadRequest{startMsg(&mediagwv1.UploadStart{MediaType: "audio/mpeg", TotalBytes: 10})}, code: "InvalidArgument", msg: `media_type "audio/mpeg" is not one of X's media types`},
		{name: "category does not fit type", msgs: []*mediagwv1.UploadRequest{startMsg(&mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: 10, MediaCategory: mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_IMAGE})}, code: "InvalidArgument", msg: "media_category tweet_image does not accept media_type video/mp4"},
		{name: "no total", msgs: []*mediagwv1.UploadRequest{startMsg(&mediagwv1.UploadStart{MediaType: "video/mp4"})}, code: "InvalidArgument", msg: "the body is empty"},
		{name: "image over its limit", msgs: []*mediagwv1.UploadRequest{startMsg(&mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: 6 << 20})}, code: "InvalidArgument", msg: "exceeds the tweet_image limit"},
		{name: "bytes are another format", msgs: []*mediagwv1.UploadRequest{startMsg(&mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(png))}), chunkMsg(png)}, code: "InvalidArgument", msg: "media_type is video/mp4 but the bytes are image/png"},
		{name: "start twice", msgs: []*mediagwv1.UploadRequest{startMsg(&mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: 100}), startMsg(&mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: 100})}, code: "InvalidArgument", msg: "start must be sent once"},
		{name: "ends before the head", msgs: []*mediagwv1.UploadRequest{startMsg(&mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: 100}), chunkMsg(mp4[:5])}, code: "InvalidArgument", msg: "received 5 of 100 bytes"},
		{name: "ends short", msgs: []*mediagwv1.UploadRequest{startMsg(&mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(mp4))}), chunkMsg(mp4[:70000])}, code: "InvalidArgument", msg: "received 70000 of 102400 bytes", reachesX: true},
		{name: "more than total", msgs: []*mediagwv1.UploadRequest{startMsg(&mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: 70000}), chunkMsg(mp4[:65536]), chunkMsg(mp4[65536:])}, code: "InvalidArgument", msg: "received more than total_bytes (70000)", reachesX: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := e.client.Upload(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.msgs {
				if err := stream.Send(m); err != nil {
					break // the server already answered
				}
			}
			_, err = stream.CloseAndRecv()
			if codeOf(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("got %v, want %s containing %q", err, tc.code, tc.msg)
			}
		})
	}
	// Only the two uploads whose fault shows after INIT reached X, and
	// neither was finalized or sent bytes past its total.
	logs := e.uploadLogs()
	initd := 0
	for _, l := range logs {
		id, ok := l["media_id"].(string)
		if !ok {
			continue
		}
		initd++
		info := e.x.Media(t, id)
		if !info.FinalizedAt.IsZero() || info.Size > info.TotalBytes {
			t.Errorf("media %s at X after a refused upload: %+v", id, info)
		}
	}
	if want := 2; initd != want || e.x.X.Stats().Requests["init"] != int64(want) {
		t.Fatalf("%d uploads reached INIT (emulator saw %d), want %d", initd, e.x.X.Stats().Requests["init"], want)
	}
}

// problemOf posts to the upload route and returns the status and problem.
func problemOf(t *testing.T, req *http.Request) (int, map[string]any, http.Header) {
	t.Helper()
	code, out, h := restUpload(t, req)
	if ct := h.Get("Content-Type"); code != http.StatusOK && ct != "application/problem+json" {
		t.Fatalf("HTTP %d with Content-Type %q, want a problem document", code, ct)
	}
	return code, out, h
}

func TestBadRESTUploads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	png := media("image/png", 1000, 2)
	post := func(query string, body io.Reader, contentType string, length int64) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload"+query, body)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.ContentLength = length
		return req
	}
	multipartWrongPart := func() (io.Reader, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.WriteField("media_type", "image/png")
		fw, _ := mw.CreateFormFile("image", "a.png")
		_, _ = fw.Write(png)
		_ = mw.Close()
		return &b, mw.FormDataContentType()
	}
	mpBody, mpType := multipartWrongPart()
	cases := []struct {
		name   string
		req    *http.Request
		status int
		detail string
	}{
		{"no media type", post("", bytes.NewReader(png), "application/octet-stream", int64(len(png))), 400, "media_type is required"},
		{"bad media type", post("?media_type=application/zip", bytes.NewReader(png), "", int64(len(png))), 400, "not one of X's media types"},
		{"bad category", post("?media_type=image/png&media_category=vines", bytes.NewReader(png), "", int64(len(png))), 400, `media_category "vines"`},
		{"bad total", post("?media_type=image/png&total_bytes=ten", bytes.NewReader(png), "", int64(len(png))), 400, `total_bytes "ten" is not a whole number`},
		{"total larger than body", post("?media_type=image/png&total_bytes=2000", bytes.NewReader(png), "", -1), 400, "received 1000 of 2000 bytes"},
		{"total smaller than body", post("?media_type=image/png&total_bytes=500", bytes.NewReader(png), "", -1), 400, "received more than total_bytes (500)"},
		{"sniff mismatch", post("?media_type=image/gif", bytes.NewReader(png), "", int64(len(png))), 400, "media_type is image/gif but the bytes are image/png"},
		{"multipart with the media in another part", post("", mpBody, mpType, -1), 400, "the media must be the part named media"},
		{"empty body", post("?media_type=image/png", http.NoBody, "", 0), 400, "the body is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, p, _ := problemOf(t, tc.req)
			if code != tc.status || !strings.Contains(p["detail"].(string), tc.detail) || p["status"] != float64(tc.status) {
				t.Fatalf("HTTP %d %v, want %d with detail containing %q", code, p, tc.status, tc.detail)
			}
		})
	}
	res, err := http.Get(e.httpURL + "/v1/media/abc/status")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("status of media id abc: HTTP %d, want 400", res.StatusCode)
	}
}

func TestRateLimitedUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{RateLimits: map[string]xfake.RateLimit{"init": {Limit: 1, Window: time.Hour}}}, "--rate-limit-wait=1s")
	png := media("image/png", 1000, 2)
	start := &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: int64(len(png))}
	if _, err := e.upload(context.Background(), start, png, fixed(1000)); err != nil {
		t.Fatalf("first upload: %v", err)
	}
	_, err := e.upload(context.Background(), start, png, fixed(1000))
	if codeOf(err) != "ResourceExhausted" {
		t.Fatalf("second upload in the window: %v, want ResourceExhausted", err)
	}
	var delay time.Duration
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay < 50*time.Minute || delay > time.Hour+2*time.Second {
		t.Fatalf("RetryInfo delay %v, want the time left in the 1h window", delay)
	}
	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=image/png", bytes.NewReader(png))
	code, p, h := problemOf(t, req)
	ra, _ := strconv.Atoi(h.Get("Retry-After"))
	if code != http.StatusTooManyRequests || p["code"] != "RESOURCE_EXHAUSTED" || ra < 3000 {
		t.Fatalf("REST: HTTP %d %v Retry-After %q", code, p, h.Get("Retry-After"))
	}
}

func TestXUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{FaultRate: 1, FaultKinds: []xfake.FaultKind{xfake.Fault503}}, "--max-attempts=2")
	png := media("image/png", 1000, 2)
	_, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: int64(len(png))}, png, fixed(1000))
	if codeOf(err) != "Unavailable" {
		t.Fatalf("upload while X answers 503: %v, want Unavailable", err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=image/png", bytes.NewReader(png))
	if code, p, _ := problemOf(t, req); code != http.StatusServiceUnavailable || p["code"] != "UNAVAILABLE" {
		t.Fatalf("REST: HTTP %d %v, want 503", code, p)
	}
}

// TestXErrorsAreOneSentence: what a caller reads of X's failure is one
// sentence, with neither X's address nor a chain of internal prefixes;
// the log line keeps the detail for operators.
func TestXErrorsAreOneSentence(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{FaultRate: 1, FaultKinds: []xfake.FaultKind{xfake.FaultReset}}, "--max-attempts=2")
	png := media("image/png", 1000, 2)
	_, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: int64(len(png))}, png, fixed(1000))
	msg := status.Convert(err).Message()
	// The reset shows as "connection reset" or "connection failed",
	// depending on when it hits the request.
	if codeOf(err) != "Unavailable" || !strings.HasPrefix(msg, "X did not answer INIT after 2 attempts (connection ") ||
		strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "upstream") {
		t.Fatalf("upload while X resets every connection: %v", err)
	}
	logs := e.uploadLogs()
	if len(logs) != 1 || logs[0]["error"] != msg || logs[0]["cause"] == nil {
		t.Fatalf("upload log %v, want the caller's sentence as error and the detail as cause", logs)
	}
	if cause := fmt.Sprint(logs[0]["cause"]); !strings.Contains(cause, "127.0.0.1") {
		t.Fatalf("the log's cause %s lacks the detail (X's address)", cause)
	}
}

// TestLargestUploadAgreesWithThePlanner: the largest video mediagw accepts
// is exactly what 1000 of X's largest segments hold (v2: 4000 MiB): that
// size reaches INIT, one byte more is refused before it, and a
// --max-video-bytes beyond it stops startup.
func TestLargestUploadAgreesWithThePlanner(t *testing.T) {
	t.Parallel()
	const most = 1000 * 4 << 20
	e := newEnv(t, xfake.Options{}, fmt.Sprintf("--max-video-bytes=%d", int64(most)), "--segment-size=4MiB")
	mp4 := media("video/mp4", 64<<10, 92)
	_, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: most + 1}, mp4, fixed(32<<10))
	if codeOf(err) != "InvalidArgument" || !strings.Contains(err.Error(), "exceeds the tweet_video limit of 4194304000 bytes") {
		t.Fatalf("one byte over the largest upload: %v", err)
	}
	if n := e.x.X.Stats().Requests["init"]; n != 0 {
		t.Fatalf("X saw %d INITs for a refused size", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := e.client.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(startMsg(&mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: most}))
	_ = stream.Send(chunkMsg(mp4))
	waitFor(t, func() bool { return e.x.X.Stats().Requests["init"] == 1 })
	cancel()

	cfg, err := parseConfig([]string{"--x-api-url=" + e.x.URL, "--x-token=t", "--max-video-bytes=8GiB", "--ledger=off"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	tel, err := setupTelemetry(context.Background(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if a, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler), tel); err == nil || !strings.Contains(err.Error(), "at most 4194304000 bytes") {
		if a != nil {
			a.closeAll()
		}
		t.Fatalf("--max-video-bytes 8GiB on v2: %v, want a refusal naming the largest upload", err)
	}
}
