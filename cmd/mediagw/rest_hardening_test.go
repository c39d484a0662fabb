package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// TestMalformedTokenIsNeverReplaced: a caller's X token that is not
// printable ASCII (or empty, or repeated) is refused with 400 before
// anything reaches X; it is never dropped in favour of mediagw's own
// credentials.
func TestMalformedTokenIsNeverReplaced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	png := media("image/png", 1000, 2)
	for name, set := range map[string]func(h http.Header){
		"non-ASCII": func(h http.Header) { h.Set("X-Access-Token", "tok\x80en") },
		"empty":     func(h http.Header) { h["X-Access-Token"] = []string{""} },
		"repeated":  func(h http.Header) { h["X-Access-Token"] = []string{"a-token", "b-token"} },
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=image/png", bytes.NewReader(png))
			set(req.Header)
			code, p, _ := problemOf(t, req)
			if code != http.StatusBadRequest || !strings.Contains(p["detail"].(string), "X-Access-Token header") {
				t.Fatalf("HTTP %d %v, want 400 naming the X-Access-Token header", code, p)
			}
			req, _ = http.NewRequest(http.MethodGet, e.httpURL+"/v1/media/123/status", nil)
			set(req.Header)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusBadRequest {
				t.Fatalf("status with a malformed token: HTTP %d, want 400", res.StatusCode)
			}
		})
	}
	if n := e.x.X.Stats().Requests["init"] + e.x.X.Stats().Requests["status"]; n != 0 {
		t.Fatalf("X saw %d calls, want none", n)
	}
}

// multipartBody builds a multipart upload; extra runs after the media part.
func multipartBody(data []byte, extra func(*multipart.Writer), closeIt bool) (*bytes.Buffer, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.WriteField("media_type", "video/mp4")
	_ = mw.WriteField("total_bytes", fmt.Sprint(len(data)))
	fw, _ := mw.CreateFormFile("media", "clip.mp4")
	_, _ = fw.Write(data)
	if extra != nil {
		extra(mw)
	}
	if closeIt {
		_ = mw.Close()
	}
	return &b, mw.FormDataContentType()
}

// TestMultipartIntegrity: anything after the media part, a second file
// and a body without its closing boundary are refused and nothing is
// finalized; a well-formed body is byte-exact.
func TestMultipartIntegrity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	data := media("video/mp4", 200<<10, 7)
	wrongSum := strings.Repeat("0", 64)
	cases := []struct {
		name    string
		extra   func(*multipart.Writer)
		closeIt bool
		detail  string
	}{
		{"sha256 after the media", func(mw *multipart.Writer) { _ = mw.WriteField("sha256", wrongSum) }, true, `form part "sha256" follows the media part`},
		{"second file", func(mw *multipart.Writer) {
			fw, _ := mw.CreateFormFile("media", "again.mp4")
			_, _ = fw.Write(data)
		}, true, `form part "media" follows the media part`},
		{"no closing boundary", nil, false, "reading the media part"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := multipartBody(data, tc.extra, tc.closeIt)
			req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload", body)
			req.Header.Set("Content-Type", ct)
			code, p, _ := problemOf(t, req)
			if code != http.StatusBadRequest || !strings.Contains(p["detail"].(string), tc.detail) {
				t.Fatalf("HTTP %d %v, want 400 with %q", code, p, tc.detail)
			}
		})
	}
	if n := e.x.X.Stats().Requests["finalize"]; n != 0 {
		t.Fatalf("X saw %d FINALIZEs for refused bodies, want 0", n)
	}
	body, ct := multipartBody(data, nil, true)
	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload", body)
	req.Header.Set("Content-Type", ct)
	code, out, _ := restUpload(t, req)
	if code != http.StatusOK {
		t.Fatalf("well-formed multipart: HTTP %d %v", code, out)
	}
	e.checkStored(out["media_id"].(string), data)
}

// slowReader yields n bytes every interval.
type slowReader struct {
	data     []byte
	n        int
	interval time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.interval)
	k := copy(p[:min(len(p), r.n)], r.data)
	r.data = r.data[k:]
	return k, nil
}

// TestRESTIdleIsNoByteForTheTimeout: a caller sending 2000 B/s, far less
// than a segment per idle timeout, is not idle; a caller that stops
// sending gets a 408 problem, not a dropped connection.
func TestRESTIdleIsNoByteForTheTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{}, "--idle-timeout=1s")
	data := media("video/mp4", 6000, 8)
	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=video/mp4",
		&slowReader{data: data, n: 200, interval: 100 * time.Millisecond})
	req.ContentLength = int64(len(data))
	code, out, _ := restUpload(t, req)
	if code != http.StatusOK {
		t.Fatalf("slow but steady caller: HTTP %d %v", code, out)
	}
	e.checkStored(out["media_id"].(string), data)

	// A caller that declares 10000 bytes, sends 100 and goes silent.
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.httpURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/media:upload?media_type=video/mp4 HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n")
	_, _ = conn.Write(data[:100])
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("silent caller got no response: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "no data from the caller for 1s") ||
		res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("silent caller: HTTP %d %s %s, want a 408 problem", res.StatusCode, res.Header.Get("Content-Type"), b)
	}
}

// TestInvalidInputNamesTheField: bytes that are not UTF-8 and protobuf
// that does not decode are 400 / InvalidArgument, never 500 / Internal.
func TestInvalidInputNamesTheField(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	png := media("image/png", 1000, 2)
	for query, detail := range map[string]string{
		"?media_type=image/p%FFng":                         "media_type",
		"?media_type=image/png&sha256=%FF%FE":              "sha256",
		"?media_type=image/png&additional_owners=12%FF":    "additional_owners",
		"?media_type=image/png&media_category=tweet%FFvid": "media_category",
		"?media_type=image/png&x=%ZZ":                      "the query string is malformed",
	} {
		req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload"+query, bytes.NewReader(png))
		code, p, _ := problemOf(t, req)
		if code != http.StatusBadRequest || !strings.Contains(p["detail"].(string), detail) {
			t.Errorf("%s: HTTP %d %v, want 400 naming %s", query, code, p, detail)
		}
	}
	for _, path := range []string{"/v1/media/12%FF/status", "/v1/media/12%FF/status:watch"} {
		res, err := http.Get(e.httpURL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "media_id") {
			t.Errorf("GET %s: HTTP %d %s, want 400 naming media_id", path, res.StatusCode, b)
		}
	}

	conn, err := grpc.NewClient(e.app.grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	// GetStatusRequest{media_id: "\xff\xfe"}: a string that is not UTF-8.
	var out []byte
	err = conn.Invoke(ctx, mediagwv1.MediaUploadService_GetStatus_FullMethodName, []byte{0x0a, 0x02, 0xff, 0xfe}, &out)
	if codeOf(err) != "InvalidArgument" || !strings.Contains(err.Error(), "media_id") {
		t.Errorf("GetStatus with invalid UTF-8: %v, want InvalidArgument naming media_id", err)
	}
	// An Upload whose start message has a media_type that is not UTF-8:
	// UploadRequest{start: UploadStart{media_type: "\xff"}}.
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, mediagwv1.MediaUploadService_Upload_FullMethodName)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.SendMsg([]byte{0x0a, 0x03, 0x0a, 0x01, 0xff})
	_ = stream.CloseSend()
	err = stream.RecvMsg(&out)
	if codeOf(err) != "InvalidArgument" || !strings.Contains(err.Error(), "start.media_type is not valid UTF-8") {
		t.Errorf("Upload with a non-UTF-8 media_type: %v, want InvalidArgument naming start.media_type", err)
	}
	// An Upload whose first message is not protobuf at all.
	stream, err = conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, mediagwv1.MediaUploadService_Upload_FullMethodName)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.SendMsg([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff})
	_ = stream.CloseSend()
	err = stream.RecvMsg(&out)
	if codeOf(err) != "InvalidArgument" || !strings.Contains(err.Error(), "UploadRequest") {
		t.Errorf("Upload with malformed protobuf: %v, want InvalidArgument", err)
	}
}

// rawCodec sends and receives messages as raw bytes.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

// TestWrongMethodIs405: a known route with another method answers 405
// with Allow, an unknown route 404, both as problems.
func TestWrongMethodIs405(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	for _, c := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{http.MethodPut, "/v1/media:upload", 405, "POST"},
		{http.MethodDelete, "/v1/media/123/status", 405, "GET"},
		{http.MethodGet, "/v1/nothing", 404, ""},
	} {
		req, _ := http.NewRequest(c.method, e.httpURL+c.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.code || res.Header.Get("Allow") != c.allow ||
			res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: HTTP %d Allow %q (%s), want %d Allow %q", c.method, c.path, res.StatusCode,
				res.Header.Get("Allow"), res.Header.Get("Content-Type"), c.code, c.allow)
		}
	}
}

// TestMaxMessageIsExact: a chunk of exactly --max-message bytes is taken,
// one byte more is refused by gRPC's own size check (ResourceExhausted).
func TestMaxMessageIsExact(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{}, "--max-message=64KiB")
	data := media("video/mp4", 200<<10, 81)
	resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(64<<10))
	if err != nil {
		t.Fatalf("chunks of exactly --max-message: %v", err)
	}
	e.checkStored(resp.GetMediaId(), data)
	_, err = e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(64<<10+1))
	if codeOf(err) != "ResourceExhausted" || !strings.Contains(err.Error(), "larger than max") {
		t.Fatalf("a chunk one byte over --max-message: %v, want ResourceExhausted", err)
	}
}
