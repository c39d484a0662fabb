package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dghubble/oauth1"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// lineWriter collects output and reports the listening address.
type lineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for _, line := range strings.Split(w.buf.String(), "\n") {
		if a, ok := strings.CutPrefix(line, "xfake listening on "); ok {
			select {
			case w.addr <- a:
			default:
			}
		}
	}
	return len(p), nil
}

// start runs the command on a free port and returns its base URL.
func start(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lineWriter{addr: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	select {
	case base := <-out.addr:
		return base
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no listening line")
	}
	return ""
}

type caller struct {
	t    *testing.T
	base string
	hc   *http.Client
	auth string
}

func (c caller) call(method, path, ctype string, body io.Reader, want int) []byte {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	return b
}

func multipartOf(fields map[string]string, media []byte) (string, io.Reader) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	w, _ := mw.CreateFormFile("media", "chunk")
	_, _ = w.Write(media)
	_ = mw.Close()
	return mw.FormDataContentType(), &buf
}

func jsonField(t *testing.T, b []byte, path ...string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return fmt.Sprint(v)
}

// TestRunAllDialects drives INIT → 2×APPEND (multipart) → FINALIZE → STATUS
// through each dialect like a curl user, then checks the sha256 the
// inspection endpoint reports.
func TestRunAllDialects(t *testing.T) {
	base := start(t, "--token", "T", "--processing-time", "100ms", "--consumer-key", "ck", "--consumer-secret", "cs",
		"--access-token", "at", "--access-token-secret", "ats", "--log-level", "debug")
	media := append([]byte("\x00\x00\x00\x18ftypmp42"), bytes.Repeat([]byte("0123456789"), 300)...)
	half := len(media) / 2
	total := fmt.Sprint(len(media))
	sum := sha256.Sum256(media)
	bearer := caller{t: t, base: base, hc: http.DefaultClient, auth: "Bearer T"}
	signed := caller{t: t, base: base, hc: oauth1.NewConfig("ck", "cs").Client(context.Background(), oauth1.NewToken("at", "ats"))}
	form := "application/x-www-form-urlencoded"

	checkSHA := func(id string) {
		info := bearer.call(http.MethodGet, "/_xfake/media/"+id, "", nil, http.StatusOK)
		if got := jsonField(t, info, "sha256"); got != hex.EncodeToString(sum[:]) {
			t.Errorf("media %s sha256 %s", id, got)
		}
	}
	pollSucceeded := func(c caller, path string, state ...string) {
		for i := 0; ; i++ {
			b := c.call(http.MethodGet, path, "", nil, http.StatusOK)
			if jsonField(t, b, state...) == "succeeded" {
				return
			}
			if i > 100 {
				t.Fatalf("never succeeded: %s", b)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	t.Run("v2 dedicated", func(t *testing.T) {
		b := bearer.call(http.MethodPost, "/2/media/upload/initialize", "application/json",
			strings.NewReader(`{"media_type":"video/mp4","total_bytes":`+total+`,"media_category":"tweet_video"}`), http.StatusOK)
		id := jsonField(t, b, "data", "id")
		for i, chunk := range [][]byte{media[:half], media[half:]} {
			ct, body := multipartOf(map[string]string{"segment_index": fmt.Sprint(i)}, chunk)
			bearer.call(http.MethodPost, "/2/media/upload/"+id+"/append", ct, body, http.StatusOK)
		}
		b = bearer.call(http.MethodPost, "/2/media/upload/"+id+"/finalize", "", nil, http.StatusOK)
		if jsonField(t, b, "data", "processing_info", "state") != "pending" {
			t.Errorf("finalize %s", b)
		}
		pollSucceeded(bearer, "/2/media/upload?command=STATUS&media_id="+id, "data", "processing_info", "state")
		checkSHA(id)
	})
	t.Run("v2 command", func(t *testing.T) {
		b := bearer.call(http.MethodPost, "/2/media/upload", form, strings.NewReader(url.Values{"command": {"INIT"},
			"media_type": {"video/mp4"}, "total_bytes": {total}, "media_category": {"amplify_video"}}.Encode()), http.StatusAccepted)
		id := jsonField(t, b, "data", "id")
		for i, chunk := range [][]byte{media[:half], media[half:]} {
			ct, body := multipartOf(map[string]string{"command": "APPEND", "media_id": id, "segment_index": fmt.Sprint(i)}, chunk)
			bearer.call(http.MethodPost, "/2/media/upload", ct, body, http.StatusNoContent)
		}
		bearer.call(http.MethodPost, "/2/media/upload", form, strings.NewReader("command=FINALIZE&media_id="+id), http.StatusOK)
		pollSucceeded(bearer, "/2/media/upload?command=STATUS&media_id="+id, "data", "processing_info", "state")
		checkSHA(id)
	})
	t.Run("v1.1", func(t *testing.T) {
		b := signed.call(http.MethodPost, "/1.1/media/upload.json", form, strings.NewReader(url.Values{"command": {"INIT"},
			"media_type": {"video/mp4"}, "total_bytes": {total}, "media_category": {"tweet_video"}}.Encode()), http.StatusAccepted)
		id := jsonField(t, b, "media_id_string")
		for i, chunk := range [][]byte{media[:half], media[half:]} {
			ct, body := multipartOf(map[string]string{"command": "APPEND", "media_id": id, "segment_index": fmt.Sprint(i)}, chunk)
			signed.call(http.MethodPost, "/1.1/media/upload.json", ct, body, http.StatusNoContent)
		}
		signed.call(http.MethodPost, "/1.1/media/upload.json", form, strings.NewReader("command=FINALIZE&media_id="+id), http.StatusOK)
		pollSucceeded(signed, "/1.1/media/upload.json?command=STATUS&media_id="+id, "processing_info", "state")
		checkSHA(id)
		// The bearer token is refused on v1.1, an unsigned OAuth header too.
		bearer.call(http.MethodGet, "/1.1/media/upload.json?command=STATUS&media_id="+id, "", nil, http.StatusForbidden)
		unsigned := caller{t: t, base: base, hc: http.DefaultClient, auth: `OAuth oauth_consumer_key="ck", oauth_token="at", ` +
			`oauth_signature_method="HMAC-SHA1", oauth_signature="bm9wZQ%3D%3D", oauth_timestamp="1", oauth_nonce="n"`}
		unsigned.call(http.MethodGet, "/1.1/media/upload.json?command=STATUS&media_id="+id, "", nil, http.StatusUnauthorized)
	})
}

func TestRunShutsDownOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &lineWriter{addr: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--latency", "10ms"}, out) }()
	base := <-out.addr
	resp, err := http.Get(base + "/_xfake/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	if _, err := http.Get(base + "/_xfake/stats"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--token", "a,b", "--token", "c", "--bandwidth", "40MB", "--max-segment", "1MiB",
		"--rate-limit", "off", "--rate-limit", "append=5/1m", "--fault-rate", "0.25", "--fault-kinds", "503,stall",
		"--latency", "50ms", "--seed", "9"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.opts
	if strings.Join(o.Tokens, ",") != "a,b,c" || o.Bandwidth != 40_000_000 || o.MaxSegment != 1<<20 || o.FaultRate != 0.25 ||
		len(o.FaultKinds) != 2 || o.Latency != 50*time.Millisecond || o.Seed != 9 || cfg.addr != "127.0.0.1:8090" {
		t.Errorf("options %+v addr %s", o, cfg.addr)
	}
	if o.RateLimits["append"] != (xfake.RateLimit{Limit: 5, Window: time.Minute}) || o.RateLimits["init"].Limit != 0 {
		t.Errorf("rate limits %v", o.RateLimits)
	}
	oa, err := parseFlags([]string{"--redirect-uri", "http://127.0.0.1:7777/callback", "--revoke-family-on-reuse"}, io.Discard)
	if err != nil || !oa.opts.RevokeFamilyOnReuse || strings.Join(oa.opts.RedirectURIs, ",") != "http://127.0.0.1:7777/callback" {
		t.Errorf("OAuth 2.0 flags: %+v %v", oa.opts, err)
	}
	def, err := parseFlags(nil, io.Discard)
	if err != nil || def.opts.MaxSegment != 5<<20 || def.opts.Bandwidth != 0 || def.opts.RateLimits != nil || def.opts.RevokeFamilyOnReuse {
		t.Errorf("defaults %+v %v", def.opts, err)
	}
	for _, bad := range [][]string{{"--bandwidth", "40XB"}, {"--fault-rate", "2"}, {"--rate-limit", "x"},
		{"--consumer-key", "ck"}, {"--log-format", "xml"}, {"--fault-kinds", "boom"}, {"extra"}, {"--max-segment", "-1"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", bad)
		}
	}
	if err := run(context.Background(), []string{"--help"}, io.Discard); err != nil {
		t.Errorf("--help: %v", err)
	}
}
