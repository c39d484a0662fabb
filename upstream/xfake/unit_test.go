package xfake

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1048576", 1 << 20, true}, {"40MB", 40_000_000, true}, {"5MiB", 5 << 20, true},
		{"5mib", 5 << 20, true}, {"1.5GB", 1_500_000_000, true}, {"512KiB", 512 << 10, true}, {"4 MB", 4_000_000, true},
		{"2k", 2000, true}, {"1TiB", 1 << 40, true}, {"10B", 10, true},
		{"", 0, false}, {"MB", 0, false}, {"-1", 0, false}, {"5XB", 0, false}, {"1.2.3MB", 0, false},
		{"99999999999999999999TB", 0, false},
	}
	for _, tc := range cases {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseRateLimit(t *testing.T) {
	t.Parallel()
	key, rl, err := ParseRateLimit("v1.1-append=100/15m")
	if err != nil || key != "v1.1-append" || rl != (RateLimit{100, 15 * time.Minute}) {
		t.Errorf("got %q %v %v", key, rl, err)
	}
	for _, bad := range []string{"append", "append=1", "append=x/1m", "append=1/x", "nope=1/1m", "append=-1/1m", "append=1/0s"} {
		if _, _, err := ParseRateLimit(bad); err == nil {
			t.Errorf("ParseRateLimit(%q) succeeded", bad)
		}
	}
	if k, err := ParseFaultKind("Reset"); err != nil || k != FaultReset {
		t.Errorf("ParseFaultKind: %v %v", k, err)
	}
	if _, err := ParseFaultKind("boom"); err == nil {
		t.Error("ParseFaultKind(boom) succeeded")
	}
}

func TestSniff(t *testing.T) {
	t.Parallel()
	cases := []struct {
		mediaType, head string
		ok              bool
	}{
		{"video/mp4", "\x00\x00\x00\x18ftypisom", true}, {"video/mp4", "\x89PNG\r\n\x1a\n", false},
		{"video/quicktime", "\x00\x00\x00\x14ftypqt  ", true}, {"video/quicktime", "\x00\x00\x00\x08wide", true},
		{"video/webm", "\x1a\x45\xdf\xa3", true}, {"video/webm", "RIFF", false},
		{"video/mp2t", "\x47\x40", true}, {"video/mp2t", "\x00", false},
		{"image/gif", "GIF87a\x01\x00\x01\x00", true}, {"image/gif", "GIF90a", false},
		{"image/png", "\x89PNG\r\n\x1a\n", true}, {"image/jpeg", "\xff\xd8\xff\xdb", true}, {"image/pjpeg", "\xff\xd8\xff", true},
		{"image/webp", "RIFF\x00\x00\x00\x00WEBPVP8 ", true}, {"image/webp", "RIFF\x00\x00\x00\x00AVI ", false},
		{"image/bmp", "BM", true}, {"image/tiff", "II*\x00", true}, {"image/tiff", "MM\x00*", true}, {"image/tiff", "II\x00*", false},
		{"text/vtt", "\xef\xbb\xbfWEBVTT\n", true}, {"text/vtt", "1\n00:00", false}, {"text/srt", "1\n00:00:01,000", true},
		{"model/gltf-binary", "glTF", true}, {"model/vnd.usdz+zip", "PK\x03\x04", true}, {"video/mp4", "", false},
	}
	for _, tc := range cases {
		if got := sniff(tc.mediaType, []byte(tc.head)); got.ok != tc.ok {
			t.Errorf("sniff(%s, %q) = %v", tc.mediaType, tc.head, got.ok)
		}
	}
	if s := sniff("image/png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x01\x00\x00\x00\x00\x80")); s.width != 256 || s.height != 128 {
		t.Errorf("png dims %+v", s)
	}
}

func TestProcessingProgression(t *testing.T) {
	t.Parallel()
	p := 10 * time.Second
	last := 0
	for e := time.Duration(0); e <= p; e += p / 20 {
		pi := processing(e, p, false, "video/mp4")
		switch {
		case e < p/10 && pi.State != "pending":
			t.Errorf("%v: %+v", e, pi)
		case e >= p/10 && e < p:
			if pi.State != "in_progress" || pi.ProgressPercent < last || pi.CheckAfterSecs != 1 {
				t.Errorf("%v: %+v", e, pi)
			}
			last = pi.ProgressPercent
		case e >= p && pi.State != "succeeded":
			t.Errorf("%v: %+v", e, pi)
		}
	}
}

func FuzzReadJSONObject(f *testing.F) {
	for _, s := range []string{`{"media":"eA==","segment_index":0}`, `{"media":"\/\/\/\/","segment_index":"1"}`,
		`{"a":{"b":[1,2,{"c":"\""}]},"media":"x"}`, `[1]`, ``, `{`, `{"media":`, `{"media":"\u0041"}`, `{} x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		members, err := readJSONObject(strings.NewReader(s), func(r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		})
		if err == nil && members == nil {
			t.Fatal("nil members without error")
		}
	})
}

func FuzzParseOAuthHeader(f *testing.F) {
	f.Add(`oauth_consumer_key="a", oauth_token="b", oauth_signature_method="HMAC-SHA1", oauth_signature="c", oauth_timestamp="1", oauth_nonce="n"`)
	f.Add(`oauth_token="%ZZ"`)
	f.Add(`,,=,"`)
	f.Fuzz(func(t *testing.T, s string) { _, _ = parseOAuthHeader(s) })
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "40MB", "5MiB", "1.5GB", "9e99", ".", "1..2k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseSize(s); err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}

// FuzzRequests throws arbitrary bodies and content types at every endpoint:
// the emulator must answer, never panic, and never blame itself (5xx).
func FuzzRequests(f *testing.F) {
	f.Add("POST", "/2/media/upload", "multipart/form-data; boundary=X", "--X\r\nContent-Disposition: form-data; name=\"command\"\r\n\r\nINIT\r\n--X--\r\n")
	f.Add("POST", "/1.1/media/upload.json", "application/x-www-form-urlencoded", "command=APPEND&media_id=1&segment_index=0&media_data=%%%")
	f.Add("POST", "/2/media/upload/initialize", "application/json", `{"media_type":"video/mp4","total_bytes":1}`)
	f.Add("POST", "/2/media/upload/1/append", "application/json", `{"media":"eA==","segment_index":0}`)
	f.Add("POST", "/2/media/upload/1/append", "multipart/form-data", "--")
	f.Add("GET", "/2/media/upload?media_id=1", "", "")
	f.Add("POST", "/2/oauth2/token", "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=x")
	f.Add("POST", "/2/media/upload", "application/json", `{"media":"iVBORw0KGgo=","media_category":"tweet_image"}`)
	f.Add("POST", "/2/media/upload", "multipart/form-data; boundary=X", "--X\r\nContent-Disposition: form-data; name=\"media_category\"\r\n\r\nsubtitles\r\n--X\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a\"\r\n\r\n1\n\r\n--X--\r\n")
	f.Add("POST", "/1.1/media/upload.json", "application/x-www-form-urlencoded", "media_category=TweetGif&media_data=R0lGODlhAQABAA==")
	s := New(Options{Seed: 1, MaxSegment: 1 << 10})
	f.Cleanup(func() { _ = s.Close() })
	f.Fuzz(func(t *testing.T, method, path, ctype, body string) {
		if _, err := url.ParseRequestURI(path); err != nil || !strings.HasPrefix(path, "/") ||
			strings.ContainsAny(path, " \r\n#") || (method != "GET" && method != "POST") {
			return
		}
		for _, auth := range []string{"Bearer T", oauthTest} {
			req := httptest.NewRequest(method, path, bytes.NewBufferString(body))
			req.Header.Set("Content-Type", ctype)
			req.Header.Set("Authorization", auth)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("%s %s %q %q: %d %s", method, path, ctype, body, w.Code, w.Body)
			}
		}
	})
}

const oauthTest = `OAuth oauth_consumer_key="a", oauth_token="b", oauth_signature_method="HMAC-SHA1", oauth_signature="c", oauth_timestamp="1", oauth_nonce="n"`

var _ http.Handler = (*Server)(nil)
