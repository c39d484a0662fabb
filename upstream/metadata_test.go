package upstream_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// pngImage is n bytes that sniff as a w×h PNG.
func pngImage(w, h uint32, n int) []byte {
	b := payload(n, 3)
	head := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
	head = binary.BigEndian.AppendUint32(head, w)
	head = binary.BigEndian.AppendUint32(head, h)
	copy(b, head)
	return b
}

// clock is the emulator's injected clock: processing advances only when a
// test moves it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// dialects are the three dialects with the credentials each is run with;
// OAuth 1.0a signatures are verified by the emulator.
var dialects = []struct {
	name    string
	dialect upstream.Dialect
	oauth1  bool
}{
	{"v2 bearer", upstream.DialectV2, false},
	{"v2 oauth1", upstream.DialectV2, true},
	{"v2-command bearer", upstream.DialectV2Command, false},
	{"v1.1 oauth1", upstream.DialectV1, true},
}

func dialectClient(t *testing.T, opts xfake.Options, d upstream.Dialect, oauth1 bool, mod func(*upstream.Config)) (*xfaketest.Server, *upstream.Client) {
	t.Helper()
	opts.Seed = 1
	if oauth1 {
		opts.OAuth1 = &o1
	}
	srv := xfaketest.New(t, opts)
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.Dialect = d
		if oauth1 {
			cfg.Credentials = oauth1Creds()
		}
		if mod != nil {
			mod(cfg)
		}
	})
	return srv, c
}

func upload(t *testing.T, c *upstream.Client, mediaType, category string, data []byte) *upstream.Media {
	t.Helper()
	m, err := upstream.UploadAll(context.Background(), c, nil,
		upstream.InitParams{MediaType: mediaType, MediaCategory: category, TotalBytes: int64(len(data))}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMetadataEveryDialect(t *testing.T) {
	t.Parallel()
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, c := dialectClient(t, xfake.Options{}, tc.dialect, tc.oauth1, nil)
			m := upload(t, c, "image/png", "tweet_image", pngImage(40, 30, 2*kib))
			alt := strings.Repeat("é", upstream.MaxAltTextChars) // 1000 characters in 2000 bytes
			res, err := c.SetMetadata(context.Background(), nil, m.ID, upstream.Metadata{AltText: &alt,
				Sensitive: &upstream.SensitiveMediaWarning{GraphicViolence: true}})
			if err != nil {
				t.Fatal(err)
			}
			info := srv.Media(t, m.ID)
			if info.Metadata == nil || info.Metadata.AltText.Text != alt || !info.Metadata.SensitiveMediaWarning.GraphicViolence ||
				info.Metadata.SensitiveMediaWarning.AdultContent || info.MetadataRequests != 1 {
				t.Fatalf("X holds %+v after %d calls", info.Metadata, info.MetadataRequests)
			}
			if tc.dialect == upstream.DialectV1 {
				if res.Echoed != nil {
					t.Fatalf("v1.1 answers no metadata, got %+v", res.Echoed)
				}
				_, err := c.LookupMedia(context.Background(), nil, m.Key)
				if !errors.Is(err, upstream.ErrUnsupported) || !strings.Contains(err.Error(), "v1.1") {
					t.Fatalf("v1.1 lookup: %v", err)
				}
				if n := srv.X.Stats().Requests["lookup"]; n != 0 {
					t.Fatalf("v1.1 lookup sent %d requests", n)
				}
				return
			}
			if res.Echoed == nil || res.Echoed.AltText == nil || *res.Echoed.AltText != alt || !res.Echoed.Sensitive.GraphicViolence {
				t.Fatalf("echo %+v", res.Echoed)
			}
			got, err := c.LookupMedia(context.Background(), nil, m.Key)
			if err != nil {
				t.Fatal(err)
			}
			if got.Key != m.Key || got.Type != "photo" || got.Width != 40 || got.Height != 30 || got.AltText != alt {
				t.Fatalf("lookup %+v", got)
			}
		})
	}
}

func TestMetadataV2Fields(t *testing.T) {
	t.Parallel()
	srv, c := dialectClient(t, xfake.Options{}, upstream.DialectV2, false, nil)
	m := upload(t, c, "image/png", "tweet_image", pngImage(2, 2, kib))
	no := false
	exp := time.Unix(1_900_000_000, 0)
	res, err := c.SetMetadata(context.Background(), nil, m.ID, upstream.Metadata{
		AllowDownload: &no, Audience: &upstream.AudiencePolicy{XSubscriptions: []string{upstream.AudienceAny}},
		Geo: &upstream.GeoRestrictions{Blacklisted: []string{"us"}}, ExpiresAt: exp,
		FoundMediaOrigin: &upstream.FoundMediaOrigin{ID: "u5BzatR15TZ04", Provider: "giphy"}})
	if err != nil {
		t.Fatal(err)
	}
	md := srv.Media(t, m.ID).Metadata
	if md.AllowDownloadStatus == nil || md.AllowDownloadStatus.AllowDownload || md.AudiencePolicy.XSubscriptions[0] != "Any" ||
		md.GeoRestrictions.BlacklistedCountryCodes[0] != "us" || md.ContentExpiration.TimestampSec != exp.Unix() ||
		md.FoundMediaOrigin.Provider != "giphy" || md.AltText != nil {
		t.Fatalf("X holds %+v", md)
	}
	e := res.Echoed
	if e == nil || e.AllowDownload == nil || *e.AllowDownload || !e.ExpiresAt.Equal(exp) || e.FoundMediaOrigin.ID != "u5BzatR15TZ04" {
		t.Fatalf("echo %+v", e)
	}
}

func TestMetadataRefusedBeforeAnyCall(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", upstream.MaxAltTextChars+1)
	yes := true
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, c := dialectClient(t, xfake.Options{}, tc.dialect, tc.oauth1, nil)
			ctx := context.Background()
			cases := []struct {
				name string
				call func() error
				want error
			}{
				{"1001 characters", func() error {
					_, err := c.SetMetadata(ctx, nil, "1234567890123456789", upstream.Metadata{AltText: &long})
					return err
				}, upstream.ErrInvalidParams},
				{"invalid UTF-8", func() error {
					bad := "\xff"
					_, err := c.SetMetadata(ctx, nil, "1234567890123456789", upstream.Metadata{AltText: &bad})
					return err
				}, upstream.ErrInvalidParams},
				{"nothing set", func() error {
					_, err := c.SetMetadata(ctx, nil, "1234567890123456789", upstream.Metadata{})
					return err
				}, upstream.ErrInvalidParams},
				{"audience not Any", func() error {
					_, err := c.SetMetadata(ctx, nil, "1", upstream.Metadata{Audience: &upstream.AudiencePolicy{XSubscriptions: []string{"Some"}}})
					return err
				}, map[bool]error{true: upstream.ErrUnsupported, false: upstream.ErrInvalidParams}[tc.dialect == upstream.DialectV1]},
				{"lowercase language", func() error {
					_, err := c.AttachSubtitles(ctx, nil, "1", "tweet_video", upstream.Subtitles{MediaID: "2", LanguageCode: "en"})
					return err
				}, upstream.ErrInvalidParams},
				{"subtitles on an image", func() error {
					_, err := c.AttachSubtitles(ctx, nil, "1", "tweet_image", upstream.Subtitles{MediaID: "2", LanguageCode: "EN"})
					return err
				}, upstream.ErrInvalidParams},
				{"detach three letters", func() error { return c.DetachSubtitles(ctx, nil, "1", "amplify_video", "ENG") }, upstream.ErrInvalidParams},
				{"malformed media key", func() error { _, err := c.LookupMedia(ctx, nil, "1234"); return err },
					map[bool]error{true: upstream.ErrUnsupported, false: upstream.ErrInvalidParams}[tc.dialect == upstream.DialectV1]},
			}
			if tc.dialect == upstream.DialectV1 {
				cases = append(cases, struct {
					name string
					call func() error
					want error
				}{"allow-download on v1.1", func() error {
					_, err := c.SetMetadata(ctx, nil, "1", upstream.Metadata{AllowDownload: &yes})
					return err
				}, upstream.ErrUnsupported})
			}
			for _, cc := range cases {
				err := cc.call()
				var ii interface{ InvalidInput() bool }
				if !errors.Is(err, cc.want) || !errors.As(err, &ii) || !ii.InvalidInput() {
					t.Errorf("%s: %v, want %v", cc.name, err, cc.want)
				}
			}
			if st := srv.X.Stats(); len(st.Requests) != 0 {
				t.Fatalf("refusals reached X: %v", st.Requests)
			}
		})
	}
}

func TestSubtitlesEveryDialect(t *testing.T) {
	t.Parallel()
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := &clock{now: time.Unix(1_750_000_000, 0)}
			srv, c := dialectClient(t, xfake.Options{Now: clk.Now, ProcessingTime: 5 * time.Second}, tc.dialect, tc.oauth1, nil)
			ctx := context.Background()
			video := upload(t, c, "video/mp4", "tweet_video", mp4(20*kib, 5))
			if video.Processing == nil {
				t.Fatal("the video is not processed asynchronously")
			}
			track := upload(t, c, "text/srt", "subtitles", []byte("1\n00:00:01,000 --> 00:00:02,000\nHello\n"))
			sub := upstream.Subtitles{MediaID: track.ID, LanguageCode: "EN", DisplayName: "English"}
			// Before processing ends, X refuses the call: an answer, not a
			// possibly applied one.
			_, err := c.AttachSubtitles(ctx, nil, video.ID, "tweet_video", sub)
			var ae *upstream.APIError
			if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusBadRequest || ae.MaybeApplied || !strings.Contains(err.Error(), "not ready") {
				t.Fatalf("attach before processing: %v", err)
			}
			_, err = c.SetMetadata(ctx, nil, video.ID, upstream.Metadata{Sensitive: &upstream.SensitiveMediaWarning{Other: true}})
			if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusBadRequest {
				t.Fatalf("metadata before processing: %v", err)
			}
			clk.Add(6 * time.Second)
			res, err := c.AttachSubtitles(ctx, nil, video.ID, "tweet_video", sub)
			if err != nil {
				t.Fatal(err)
			}
			info := srv.Media(t, video.ID)
			if len(info.Subtitles) != 1 || info.Subtitles[0] != (xfake.SubtitleTrack{MediaID: track.ID, LanguageCode: "EN", DisplayName: "English"}) ||
				info.SubtitlesCreateRequests != 1 {
				t.Fatalf("X holds %+v after %d calls", info.Subtitles, info.SubtitlesCreateRequests)
			}
			if tc.dialect != upstream.DialectV1 && (len(res.Tracks) != 1 || res.Tracks[0] != sub) {
				t.Fatalf("echo %+v", res.Tracks)
			}
			if err := c.DetachSubtitles(ctx, nil, video.ID, "tweet_video", "EN"); err != nil {
				t.Fatal(err)
			}
			if info := srv.Media(t, video.ID); len(info.Subtitles) != 0 || info.SubtitlesDeleteRequests != 1 {
				t.Fatalf("after detach: %+v", info)
			}
		})
	}
}

func TestLookupVideoAndNotFound(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1_750_000_000, 0)}
	srv, c := dialectClient(t, xfake.Options{Now: clk.Now, ProcessingTime: time.Second}, upstream.DialectV2Command, false, nil)
	video := upload(t, c, "video/mp4", "amplify_video", mp4(8*kib, 9))
	clk.Add(2 * time.Second)
	got, err := c.LookupMedia(context.Background(), nil, video.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != "video" || len(got.Variants) != 1 || got.Variants[0].ContentType != "video/mp4" || got.PreviewImageURL == "" {
		t.Fatalf("lookup %+v", got)
	}
	_, err = c.LookupMedia(context.Background(), nil, "13_1234567890123456789")
	var ae *upstream.APIError
	if !errors.As(err, &ae) || ae.StatusCode() != http.StatusNotFound || strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("unknown key: %v", err)
	}
	// Another user's media is not theirs to look up or to change.
	other := upstream.BearerToken("someone-else")
	if _, err := c.LookupMedia(context.Background(), other, video.Key); !errors.As(err, &ae) || ae.StatusCode() != http.StatusNotFound {
		t.Fatalf("another user's lookup: %v", err)
	}
	alt := "x"
	if _, err := c.SetMetadata(context.Background(), other, video.ID, upstream.Metadata{AltText: &alt}); !errors.As(err, &ae) || ae.StatusCode() != http.StatusForbidden {
		t.Fatalf("another user's metadata: %v", err)
	}
	if n := srv.Media(t, video.ID).MetadataRequests; n != 0 {
		t.Fatalf("%d metadata calls applied", n)
	}
}

// faulty wraps the Client's transport for the metadata path: it can refuse
// the first connection (nothing sent) or send the request and then lose
// the answer or replace it with a 503, as a failing edge in front of X
// would after X did the work.
type faulty struct {
	base    http.RoundTripper
	mode    string // "refuse-once", "lose", "503"
	seen    atomic.Int64
	refused atomic.Bool
}

func (f *faulty) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/media/metadata") && !strings.HasSuffix(r.URL.Path, "/metadata/create.json") {
		return f.base.RoundTrip(r)
	}
	f.seen.Add(1)
	if f.mode == "refuse-once" && f.refused.CompareAndSwap(false, true) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	resp, err := f.base.RoundTrip(r)
	if err != nil || f.mode == "refuse-once" {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if f.mode == "lose" {
		return nil, io.ErrUnexpectedEOF
	}
	return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Content-Type": {"application/problem+json"}},
		Body:    io.NopCloser(strings.NewReader(`{"title":"Service Unavailable","type":"about:blank","status":503,"detail":"Service Unavailable"}`)),
		Request: r}, nil
}

func TestMetadataRetriedOnlyWhenNotApplied(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"refuse-once", "lose", "503"} {
		for _, tc := range []struct {
			name    string
			dialect upstream.Dialect
			oauth1  bool
		}{{"v2", upstream.DialectV2, false}, {"v1.1", upstream.DialectV1, true}} {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				f := &faulty{mode: mode, base: &http.Transport{}}
				t.Cleanup(f.base.(*http.Transport).CloseIdleConnections)
				rec := tracetest.NewSpanRecorder()
				srv, c := dialectClient(t, xfake.Options{}, tc.dialect, tc.oauth1, func(cfg *upstream.Config) {
					cfg.Transport = f
					cfg.TracerProvider = trace.NewTracerProvider(trace.WithSpanProcessor(rec))
				})
				m := upload(t, c, "image/png", "tweet_image", pngImage(2, 2, kib))
				alt := "a cat"
				_, err := c.SetMetadata(context.Background(), nil, m.ID, upstream.Metadata{AltText: &alt})
				info := srv.Media(t, m.ID)
				key := map[bool]string{true: "v1.1-metadata", false: "metadata"}[tc.dialect == upstream.DialectV1]
				reached := srv.X.Stats().Requests[key]
				spans := 0
				for _, s := range rec.Ended() {
					if s.Name() == "X METADATA" {
						spans++
					}
				}
				switch mode {
				case "refuse-once":
					if err != nil || f.seen.Load() != 2 || reached != 1 || info.MetadataRequests != 1 || spans != 2 {
						t.Fatalf("err %v, %d attempts, %d reached X, %d applied, %d spans", err, f.seen.Load(), reached, info.MetadataRequests, spans)
					}
				default:
					var ou interface{ OutcomeUnknown() bool }
					if !errors.As(err, &ou) || !ou.OutcomeUnknown() || !strings.Contains(err.Error(), "may have applied") {
						t.Fatalf("err %v, want an outcome-unknown error", err)
					}
					if f.seen.Load() != 1 || reached != 1 || info.MetadataRequests != 1 || spans != 1 {
						t.Fatalf("%d attempts, %d reached X, %d applied, %d spans: want exactly 1", f.seen.Load(), reached, info.MetadataRequests, spans)
					}
				}
			})
		}
	}
}

func TestMetadataRateLimitedIsNotApplied(t *testing.T) {
	t.Parallel()
	srv, c := dialectClient(t, xfake.Options{RateLimits: map[string]xfake.RateLimit{"metadata": {Limit: 1, Window: time.Hour}}},
		upstream.DialectV2, false, func(cfg *upstream.Config) { cfg.RateLimitMaxWait = -1 })
	m := upload(t, c, "image/png", "tweet_image", pngImage(2, 2, kib))
	other := upload(t, c, "image/png", "tweet_image", pngImage(2, 2, kib))
	alt := "first"
	if _, err := c.SetMetadata(context.Background(), nil, m.ID, upstream.Metadata{AltText: &alt}); err != nil {
		t.Fatal(err)
	}
	_, err := c.SetMetadata(context.Background(), nil, other.ID, upstream.Metadata{AltText: &alt})
	var rl *upstream.RateLimitError
	var ou interface{ OutcomeUnknown() bool }
	if !errors.As(err, &rl) || !errors.Is(err, upstream.ErrRateLimited) || (errors.As(err, &ou) && ou.OutcomeUnknown()) {
		t.Fatalf("second call: %v", err)
	}
	if n := srv.Media(t, other.ID).MetadataRequests; n != 0 {
		t.Fatalf("%d calls applied on the rate-limited media", n)
	}
}
