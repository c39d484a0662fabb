package upstream_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

const kib = 1 << 10

// OAuth 1.0a keys the emulator verifies signatures with.
var o1 = xfake.OAuth1Keys{ConsumerKey: "ck", ConsumerSecret: "consumer-secret-xyz", Token: "t1", TokenSecret: "token-secret-xyz"}

func oauth1Creds() upstream.Credentials {
	return upstream.OAuth1(o1.ConsumerKey, o1.ConsumerSecret, o1.Token, o1.TokenSecret)
}

// ts payloads are MPEG-TS-looking: X's emulator sniffs the sync byte 0x47,
// which fits even a 1-byte file, and finalizes them synchronously.
const tsType = "video/mp2t"

func payload(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	if n > 0 {
		b[0] = 0x47
	}
	return b
}

// mp4 returns a payload that sniffs as MP4 (ftyp at offset 4).
func mp4(n int, seed uint64) []byte {
	b := payload(n, seed)
	copy(b, "\x00\x00\x00\x18ftypmp42")
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func newClient(t testing.TB, srv *xfaketest.Server, mod func(*upstream.Config)) *upstream.Client {
	t.Helper()
	cfg := upstream.Config{
		BaseURL:     srv.URL,
		Credentials: upstream.BearerToken("tok"),
		SegmentSize: 64 * kib,
		BackoffBase: 5 * time.Millisecond,
		BackoffMax:  50 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := upstream.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { upstream.CloseIdle(c) })
	return c
}

// checkMedia asserts X assembled exactly data in the expected segments.
func checkMedia(t testing.TB, srv *xfaketest.Server, m *upstream.Media, data []byte, segments int) xfake.MediaInfo {
	t.Helper()
	info := srv.Media(t, m.ID)
	if info.SHA256 != sum(data) || info.Size != int64(len(data)) {
		t.Fatalf("media %s: sha256 %s size %d, want %s size %d", m.ID, info.SHA256, info.Size, sum(data), len(data))
	}
	if segments > 0 && info.Segments != segments {
		t.Fatalf("media %s: %d segments, want %d", m.ID, info.Segments, segments)
	}
	return info
}

func TestUploadDialectsAndCredentials(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		dialect upstream.Dialect
		creds   func(srv *xfaketest.Server) upstream.Credentials
		opts    xfake.Options
	}{
		{"v2 bearer", upstream.DialectV2, nil, xfake.Options{Tokens: []string{"tok"}}},
		{"v2 oauth1", upstream.DialectV2, func(*xfaketest.Server) upstream.Credentials { return oauth1Creds() }, xfake.Options{OAuth1: &o1}},
		{"v2-command bearer", upstream.DialectV2Command, nil, xfake.Options{Tokens: []string{"tok"}}},
		{"v2-command oauth1", upstream.DialectV2Command, func(*xfaketest.Server) upstream.Credentials { return oauth1Creds() }, xfake.Options{OAuth1: &o1}},
		{"v1.1 oauth1", upstream.DialectV1, func(*xfaketest.Server) upstream.Credentials { return oauth1Creds() }, xfake.Options{OAuth1: &o1}},
		{"v2 oauth2 refresh", upstream.DialectV2, func(srv *xfaketest.Server) upstream.Credentials {
			return upstream.OAuth2(&oauth2.Config{ClientID: "cid", ClientSecret: "csec",
				Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/2/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}},
				&oauth2.Token{RefreshToken: "rt0"})
		}, xfake.Options{Tokens: []string{"unused"}, ClientID: "cid", ClientSecret: "csec", RefreshTokens: []string{"rt0"},
			AccessTokenTTL: time.Second, Latency: 50 * time.Millisecond}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.opts.Seed = 1
			srv := xfaketest.New(t, tc.opts)
			c := newClient(t, srv, func(cfg *upstream.Config) { cfg.Dialect = tc.dialect })
			var creds upstream.Credentials
			if tc.creds != nil {
				creds = tc.creds(srv)
			}
			n := 300*kib + 17
			if tc.name == "v2 oauth2 refresh" {
				n = 6<<20 + 3 // 97 segments, 4 at a time, 50 ms each: outlives a 1 s token
			}
			data := payload(n, 7)
			m, err := upstream.UploadAll(context.Background(), c, creds, upstream.InitParams{MediaType: tsType, TotalBytes: int64(n)}, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if m.Processing != nil {
				t.Fatalf("sync media with processing %+v", m.Processing)
			}
			checkMedia(t, srv, m, data, (n+64*kib-1)/(64*kib))
			if tc.name == "v2 oauth2 refresh" {
				if got := srv.X.Stats().Requests["token"]; got < 2 {
					t.Fatalf("%d token refreshes, want ≥ 2 (initial + expiry)", got)
				}
			}
		})
	}
}

func TestUploadSizes(t *testing.T) {
	t.Parallel()
	const seg = 4 * kib
	cases := []struct {
		name     string
		n        int
		segments int
	}{
		{"1 byte", 1, 1},
		{"one segment", seg, 1},
		{"one segment + 1", seg + 1, 2},
		{"1000 segments", 1000 * seg, 1000},
		{"1000 segments + 1 byte grows segments", 1000*seg + 1, 1000},
	}
	// Over 2000 APPENDs with one token exceed X's 1875 per 15 minutes.
	srv := xfaketest.New(t, xfake.Options{Seed: 2, RateLimits: map[string]xfake.RateLimit{"append": {Limit: 0}}})
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.SegmentSize, cfg.MaxSegmentSize, cfg.Parallelism = seg, 2*seg, 8
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := payload(tc.n, uint64(tc.n))
			m, err := upstream.UploadAll(context.Background(), c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(tc.n)}, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			checkMedia(t, srv, m, data, tc.segments)
		})
	}
	// Beyond 1000 × MaxSegmentSize the planner refuses before INIT.
	before := srv.X.Stats().Requests["init"]
	_, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: 1000*2*seg + 1})
	if !errors.Is(err, upstream.ErrSegmentTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if srv.X.Stats().Requests["init"] != before {
		t.Fatal("INIT sent for an impossible plan")
	}
}

// TestPipelineStreamsAndBounds checks that the first APPEND leaves before
// the caller has written everything, that at most P APPENDs run at once
// (and more than one does), that memory stays within P+1 buffers, and that
// progress is reported as it happens.
func TestPipelineStreamsAndBounds(t *testing.T) {
	t.Parallel()
	const p, seg, segs = 3, 64 * kib, 20
	// A per-connection bandwidth cap makes each APPEND body take ~30 ms at
	// X, so APPENDs in flight together are seen together (latency is added
	// before X counts an APPEND as active). Segments must be larger than
	// the cap's 32 KiB burst, which is read at once.
	srv := xfaketest.New(t, xfake.Options{Latency: 20 * time.Millisecond, Bandwidth: 1 << 20, Seed: 3})
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.SegmentSize, cfg.Parallelism = seg, p })
	data := payload(seg*segs, 3)
	var mu sync.Mutex
	done := map[int]int64{}
	u, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))},
		upstream.WithSegmentDone(func(i int, n int64) { mu.Lock(); done[i] += n; mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	// Write one segment and a bit; the APPEND must reach X before more comes.
	if _, err := u.Write(data[:seg+10]); err != nil {
		t.Fatal(err)
	}
	upstream.Eventually(t, 5*time.Second, "the first APPEND left while the caller was still writing", func() bool {
		return srv.Media(t, u.MediaID()).AppendRequests > 0
	})
	// The rest through small writes.
	for off := seg + 10; off < len(data); off += 1000 {
		if _, err := u.Write(data[off:min(off+1000, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	m, err := u.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	info := checkMedia(t, srv, m, data, segs)
	if info.MaxConcurrentAppends > p || info.MaxConcurrentAppends < 2 {
		t.Fatalf("max concurrent APPENDs %d, want 2..%d", info.MaxConcurrentAppends, p)
	}
	if held, peak := upstream.BuffersHeld(c); held != 0 || peak > p+1 {
		t.Fatalf("buffers held %d, peak %d, want 0 and ≤ %d", held, peak, p+1)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(done) != segs {
		t.Fatalf("%d segments reported done, want %d", len(done), segs)
	}
	for i := range segs {
		if done[i] != seg {
			t.Fatalf("segment %d reported with %d bytes, want %d", i, done[i], seg)
		}
	}
}

// TestGlobalInFlightCap runs three uploads through one Client whose global
// cap is below their combined parallelism.
func TestGlobalInFlightCap(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Latency: 15 * time.Millisecond, Bandwidth: 1 << 20, Seed: 4})
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.SegmentSize, cfg.Parallelism, cfg.MaxInFlight = 64*kib, 4, 3 })
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := payload(5*64*kib, uint64(i)) // 5 segments, each larger than the cap's burst
			m, err := upstream.UploadAll(context.Background(), c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}, bytes.NewReader(data))
			if err != nil {
				t.Error(err)
				return
			}
			checkMedia(t, srv, m, data, 5)
		}()
	}
	wg.Wait()
	if got := srv.X.Stats().MaxConcurrentAppends; got > 3 || got < 2 {
		t.Fatalf("max concurrent APPENDs across uploads %d, want 2..3", got)
	}
	// Six uploads each want a buffer to fill and four in flight: the
	// buffers held at once, filling or in flight, never pass MaxInFlight.
	if held, peak := upstream.BuffersHeld(c); held != 0 || peak > 3 {
		t.Fatalf("segment buffers held %d, peak %d; want 0 and at most MaxInFlight (3)", held, peak)
	}
}

func TestFaultsStillByteExact(t *testing.T) {
	t.Parallel()
	for _, d := range []upstream.Dialect{upstream.DialectV2, upstream.DialectV2Command, upstream.DialectV1} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := xfaketest.New(t, xfake.Options{FaultRate: 0.2, FaultKinds: xfake.AllFaultKinds(),
				StallFor: 150 * time.Millisecond, Seed: 5, OAuth1: &o1})
			var logs syncBuffer
			c := newClient(t, srv, func(cfg *upstream.Config) {
				cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				cfg.Dialect, cfg.Credentials = d, oauth1Creds()
				cfg.SegmentSize = 16 * kib
				cfg.MaxAttempts = 10
				cfg.StallTimeout = time.Second
			})
			for i := range 3 {
				data := payload(400*kib+i, uint64(10+i))
				m, err := upstream.UploadAll(context.Background(), c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}, bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				checkMedia(t, srv, m, data, (len(data)+16*kib-1)/(16*kib))
			}
			st := srv.X.Stats()
			if st.FaultsInjected == 0 {
				t.Fatal("no faults injected")
			}
			t.Logf("faults: %v", st.Faults)
			if l := logs.String(); !strings.Contains(l, "retrying") || strings.Contains(l, "secret-xyz") {
				t.Fatalf("logs lack retries or leak a secret:\n%s", l)
			}
		})
	}
}

func TestRateLimitHonoured(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 6,
		RateLimits: map[string]xfake.RateLimit{"append": {Limit: 5, Window: 2 * time.Second}}})
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.SegmentSize, cfg.RateLimitMaxWait = 8*kib, 10*time.Second })
	data := payload(12*8*kib, 6) // 12 APPENDs: at least three windows
	start := time.Now()
	m, err := upstream.UploadAll(context.Background(), c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	checkMedia(t, srv, m, data, 12)
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("12 APPENDs at 5 per 2 s took only %v", d)
	}
	t.Logf("took %v, X answered 429 %d times", time.Since(start), srv.X.Stats().RateLimited)
}

func TestRateLimitTypedError(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 7,
		RateLimits: map[string]xfake.RateLimit{"init": {Limit: 1, Window: time.Hour}}})
	p := upstream.InitParams{MediaType: tsType, TotalBytes: 10}
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.RateLimitMaxWait = time.Second })
	if _, err := upstream.UploadAll(context.Background(), c, nil, p, bytes.NewReader(payload(10, 1))); err != nil {
		t.Fatal(err)
	}
	// The Client knows the window is used up: it does not even send.
	_, err := c.Begin(context.Background(), nil, p)
	var rl *upstream.RateLimitError
	if !errors.As(err, &rl) || !rl.Throttled || rl.RetryDelay() < 50*time.Minute {
		t.Fatalf("err = %v", err)
	}
	// A fresh Client learns it from X's 429.
	c2 := newClient(t, srv, func(cfg *upstream.Config) { cfg.RateLimitMaxWait = time.Second })
	_, err = c2.Begin(context.Background(), nil, p)
	if !errors.As(err, &rl) || rl.Throttled || rl.Err == nil || rl.Err.StatusCode() != 429 || rl.RetryDelay() < 50*time.Minute {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, upstream.ErrRateLimited) {
		t.Fatal("not ErrRateLimited")
	}
}

func TestInputErrors(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 8})
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.SegmentSize = 4 * kib })
	p := upstream.InitParams{MediaType: tsType, TotalBytes: 10 * kib}
	data := payload(11*kib, 8)

	u, err := c.Begin(context.Background(), nil, p)
	if err != nil {
		t.Fatal(err)
	}
	n, err := u.Write(data)
	if !errors.Is(err, upstream.ErrTooManyBytes) || n != 10*kib {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if _, err := u.Finish(context.Background()); !errors.Is(err, upstream.ErrTooManyBytes) {
		t.Fatalf("Finish after too many bytes: %v", err)
	}
	if info := srv.Media(t, u.MediaID()); info.Size > 10*kib || info.State != "uploading" {
		t.Fatalf("X got %d bytes, state %s", info.Size, info.State)
	}

	u, err = c.Begin(context.Background(), nil, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.ReadFrom(bytes.NewReader(data[:9*kib])); err != nil {
		t.Fatal(err)
	}
	_, err = u.Finish(context.Background())
	if !errors.Is(err, upstream.ErrShortUpload) || err.Error() != "received 9216 of the declared 10240 bytes" {
		t.Fatalf("Finish short: %v", err)
	}
	var iv interface{ InvalidInput() bool }
	if !errors.As(err, &iv) || !iv.InvalidInput() {
		t.Fatal("short upload is not InvalidInput")
	}
	if _, err := c.Begin(context.Background(), nil, upstream.InitParams{TotalBytes: 1}); !errors.Is(err, upstream.ErrInvalidParams) {
		t.Fatalf("missing media type: %v", err)
	}
	if _, err := c.Status(context.Background(), nil, "../../x"); !errors.Is(err, upstream.ErrInvalidParams) {
		t.Fatalf("bad media id: %v", err)
	}
}

func TestAPIErrorFromX(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 9, Tokens: []string{"tok"}})
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.Credentials = upstream.BearerToken("wrong-secret-token") })
	_, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: 10})
	var ae *upstream.APIError
	if !errors.As(err, &ae) || ae.StatusCode() != 401 || ae.Command != "INIT" {
		t.Fatalf("err = %v", err)
	}
	if bytes.Contains([]byte(err.Error()), []byte("wrong-secret-token")) {
		t.Fatal("token in error")
	}
	// Segments above X's limit: 413 with an empty body, not retried.
	srv2 := xfaketest.New(t, xfake.Options{Seed: 9, MaxSegment: 32 * kib})
	c2 := newClient(t, srv2, nil) // 64 KiB segments
	_, err = upstream.UploadAll(context.Background(), c2, nil, upstream.InitParams{MediaType: tsType, TotalBytes: 100 * kib},
		bytes.NewReader(payload(100*kib, 1)))
	if !errors.As(err, &ae) || ae.StatusCode() != 413 || srv2.X.Stats().Requests["append"] > 2 {
		t.Fatalf("err = %v, %d APPENDs", err, srv2.X.Stats().Requests["append"])
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.ReaderFrom = (*upstream.Upload)(nil)
var _ io.Writer = (*upstream.Upload)(nil)
