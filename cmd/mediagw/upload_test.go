package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"testing"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

func TestGRPCUploadByteExact(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{}, "--max-message=4MiB")
	const seg = 64 << 10
	cases := []struct {
		name      string
		mediaType string
		size      int
		chunk     func(int) int
		state     mediagwv1.ProcessingState
	}{
		{"one byte subtitles", "text/srt", 1, fixed(1), mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED},
		{"exactly one segment in 1000-byte chunks", "video/mp4", seg, fixed(1000), mediagwv1.ProcessingState_PROCESSING_STATE_PENDING},
		{"one segment plus one byte", "video/mp4", seg + 1, fixed(7919), mediagwv1.ProcessingState_PROCESSING_STATE_PENDING},
		{"many segments, uneven chunks", "video/mp4", 20*seg + 123, func(i int) int { return 1 + (i*7919)%(200<<10) }, mediagwv1.ProcessingState_PROCESSING_STATE_PENDING},
		{"image in one chunk", "image/png", 300 << 10, fixed(300 << 10), mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED},
		{"first chunk shorter than the sniffed head", "image/gif", 5 * seg, func(i int) int { return map[bool]int{true: i + 1, false: 5000}[i < 3] }, mediagwv1.ProcessingState_PROCESSING_STATE_PENDING},
		{"3 MiB chunks", "video/webm", 7 << 20, fixed(3 << 20), mediagwv1.ProcessingState_PROCESSING_STATE_PENDING},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := media(tc.mediaType, tc.size, uint64(i+1))
			start := &mediagwv1.UploadStart{MediaType: tc.mediaType, TotalBytes: int64(len(data))}
			resp, err := e.upload(context.Background(), start, data, tc.chunk)
			if err != nil {
				t.Fatalf("upload: %v", err)
			}
			if resp.GetSize() != int64(len(data)) || resp.GetMediaKey() == "" || resp.GetExpiresAfterSecs() <= 0 {
				t.Fatalf("response %v", resp)
			}
			if got := resp.GetProcessing().GetState(); got != tc.state {
				t.Fatalf("first processing state %v, want %v", got, tc.state)
			}
			if resp.GetProcessing().GetMediaId() != resp.GetMediaId() {
				t.Fatalf("processing media_id %q != %q", resp.GetProcessing().GetMediaId(), resp.GetMediaId())
			}
			e.checkStored(resp.GetMediaId(), data)
		})
	}
}

// restUpload posts body to /v1/media:upload and decodes the JSON answer.
func restUpload(t *testing.T, req *http.Request) (int, map[string]any, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("HTTP %d body %q is not JSON: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, out, resp.Header
}

func TestRESTUploadByteExact(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	data := media("video/mp4", 3<<20+77, 42)

	t.Run("raw body with Content-Length", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=video/mp4", bytes.NewReader(data))
		code, out, _ := restUpload(t, req)
		if code != http.StatusOK {
			t.Fatalf("HTTP %d: %v", code, out)
		}
		if out["size"] != strconv.Itoa(len(data)) {
			t.Fatalf("size %v, want %d (int64 as a JSON string)", out["size"], len(data))
		}
		e.checkStored(out["media_id"].(string), data)
	})
	t.Run("chunked transfer with total_bytes", func(t *testing.T) {
		t.Parallel()
		url := fmt.Sprintf("%s/v1/media:upload?media_type=video/mp4&media_category=amplify_video&total_bytes=%d", e.httpURL, len(data))
		req, _ := http.NewRequest(http.MethodPost, url, io.MultiReader(bytes.NewReader(data[:1000]), bytes.NewReader(data[1000:])))
		req.ContentLength = -1 // Transfer-Encoding: chunked
		code, out, _ := restUpload(t, req)
		if code != http.StatusOK {
			t.Fatalf("HTTP %d: %v", code, out)
		}
		if key := out["media_key"].(string); key[:3] != "13_" {
			t.Fatalf("media_key %q: want an amplify_video key", key)
		}
		e.checkStored(out["media_id"].(string), data)
	})
	t.Run("multipart form", func(t *testing.T) {
		t.Parallel()
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			_ = mw.WriteField("media_type", "video/mp4")
			_ = mw.WriteField("total_bytes", strconv.Itoa(len(data)))
			fw, _ := mw.CreateFormFile("media", "clip.mp4")
			_, _ = fw.Write(data)
			pw.CloseWithError(mw.Close())
		}()
		req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload", pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		code, out, _ := restUpload(t, req)
		if code != http.StatusOK {
			t.Fatalf("HTTP %d: %v", code, out)
		}
		e.checkStored(out["media_id"].(string), data)
	})
	t.Run("media type from Content-Type", func(t *testing.T) {
		t.Parallel()
		png := media("image/png", 5000, 7)
		req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload", bytes.NewReader(png))
		req.Header.Set("Content-Type", "image/png")
		code, out, _ := restUpload(t, req)
		if code != http.StatusOK {
			t.Fatalf("HTTP %d: %v", code, out)
		}
		proc := out["processing"].(map[string]any)
		if proc["state"] != "PROCESSING_STATE_SUCCEEDED" {
			t.Fatalf("image processing %v, want SUCCEEDED at once", proc)
		}
		e.checkStored(out["media_id"].(string), png)
	})
}

func TestPerCallToken(t *testing.T) {
	t.Parallel()
	// No default credentials: each call must bring its own token.
	e := newEnv(t, xfake.Options{Tokens: []string{"caller-token"}}, "--x-token=")
	data := media("image/png", 2000, 3)
	start := &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: int64(len(data))}
	if _, err := e.upload(context.Background(), start, data, fixed(1000)); codeOf(err) != "Unauthenticated" {
		t.Fatalf("upload without token: %v, want Unauthenticated", err)
	}
	resp, err := e.upload(withToken(context.Background(), "caller-token"), start, data, fixed(1000))
	if err != nil {
		t.Fatalf("upload with x-access-token: %v", err)
	}
	e.checkStored(resp.GetMediaId(), data)

	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=image/png", bytes.NewReader(data))
	req.Header.Set("X-Access-Token", "caller-token")
	if code, out, _ := restUpload(t, req); code != http.StatusOK {
		t.Fatalf("REST with X-Access-Token: HTTP %d %v", code, out)
	}
	req, _ = http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=image/png", bytes.NewReader(data))
	req.Header.Set("X-Access-Token", "wrong-token")
	code, out, _ := restUpload(t, req)
	if code != http.StatusUnauthorized || out["code"] != "UNAUTHENTICATED" {
		t.Fatalf("REST with a wrong token: HTTP %d %v, want 401 UNAUTHENTICATED", code, out)
	}
	if s := e.logs.String(); bytes.Contains([]byte(s), []byte("caller-token")) || bytes.Contains([]byte(s), []byte("wrong-token")) {
		t.Fatal("a token appears in the logs")
	}
}

// TestCancelStopsUpstream: a caller that cancels an upload without an
// idempotency key ends it at X too. Its APPENDs are held in front of X:
// the cancel must end them there (their requests' contexts end), and once
// the upload is logged no other APPEND of it arrives before the next
// upload's have all been answered.
func TestCancelStopsUpstream(t *testing.T) {
	t.Parallel()
	e, w := newWatchedEnv(t, true, xfake.Options{})
	data := media("video/mp4", 4<<20, 9)
	ctx, cancel := context.WithCancel(context.Background())
	e.openUpload(ctx, data, 1<<20)
	w.await(t, "an APPEND held in front of X", func() bool { return w.total().Arrived > 0 })
	cancel()
	waitFor(t, func() bool { return len(e.uploadLogs()) == 1 })
	line := e.uploadLogs()[0]
	if line["outcome"] != "Canceled" {
		t.Fatalf("upload log %v, want outcome Canceled", line)
	}
	id := line["media_id"].(string)
	w.await(t, "the cancelled upload's APPENDs ended in front of X", func() bool { return w.of(id).Active == 0 })
	cut := w.of(id)
	if cut.Arrived == 0 || cut.Gone != cut.Arrived {
		t.Fatalf("APPENDs of the cancelled upload %+v: want every one ended by mediagw going away", cut)
	}
	if n := e.x.X.Stats().Requests["append"]; n != 0 {
		t.Fatalf("X answered %d APPENDs of the cancelled upload, want 0", n)
	}
	// The marker: a whole upload after it, through the same mediagw.
	w.unhold()
	next := media("video/mp4", 200<<10, 10)
	resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(next))}, next, fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	e.checkStored(resp.GetMediaId(), next)
	if after := w.of(id); after != cut {
		t.Fatalf("APPENDs of the cancelled upload went on: %+v, then %+v after the next upload", cut, after)
	}
	if info := e.x.Media(t, id); info.State != "uploading" || !info.FinalizedAt.IsZero() || info.AppendRequests != 0 {
		t.Fatalf("media %s at X: %+v, want it never appended to nor finalized", id, info)
	}
}

// TestEmbeddedEmulatorEveryDialect: with no X configured, every dialect
// works on the built-in emulator (v1.1 with OAuth 1.0a signatures it
// verifies).
func TestEmbeddedEmulatorEveryDialect(t *testing.T) {
	t.Parallel()
	for _, d := range []string{"v2", "v2-command", "v1.1"} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			e := startApp(t, "", nil, "--x-dialect="+d, "--emulator-processing-time=100ms")
			data := media("video/mp4", 300<<10, 91)
			req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=video/mp4", bytes.NewReader(data))
			if code, out, _ := restUpload(t, req); code != http.StatusOK {
				t.Fatalf("upload on the built-in emulator with --x-dialect %s: HTTP %d %v", d, code, out)
			}
		})
	}
}
