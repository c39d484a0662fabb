package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// TestLargestUpload: per dialect, Begin sends INIT for the largest file X
// takes and refuses one byte more before anything is sent; a Client whose
// MaxSegmentSize is lower says so, and one above X's segment limit is
// refused.
func TestLargestUpload(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 70, OAuth1: &o1})
	for _, d := range []upstream.Dialect{upstream.DialectV2, upstream.DialectV2Command, upstream.DialectV1} {
		t.Run(string(d), func(t *testing.T) {
			c := newClient(t, srv, func(cfg *upstream.Config) { cfg.Dialect, cfg.Credentials, cfg.SegmentSize = d, oauth1Creds(), 0 })
			largest := upstream.MaxUploadBytes(d)
			if c.MaxUploadBytes() != largest {
				t.Fatalf("Client.MaxUploadBytes %d, MaxUploadBytes(%s) %d", c.MaxUploadBytes(), d, largest)
			}
			u, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: "video/mp4", MediaCategory: "tweet_video", TotalBytes: largest})
			if err != nil {
				t.Fatalf("largest upload (%d bytes): %v", largest, err)
			}
			if size, n := u.Segments(); size != upstream.MaxSegmentBytes(d) || n != upstream.MaxSegments {
				t.Fatalf("plan %d × %d", n, size)
			}
			u.Abort(nil)
			before := srv.X.Stats().Requests
			_, err = c.Begin(context.Background(), nil, upstream.InitParams{MediaType: "video/mp4", MediaCategory: "tweet_video", TotalBytes: largest + 1})
			want := fmt.Sprintf("%d bytes is more than one upload to X can hold on %s: at most %d bytes (1000 segments of %d bytes)",
				largest+1, d, largest, upstream.MaxSegmentBytes(d))
			if !errors.Is(err, upstream.ErrSegmentTooLarge) || err.Error() != want {
				t.Fatalf("one byte more: %v\nwant %s", err, want)
			}
			if after := srv.X.Stats().Requests; fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("a request reached X for a refused upload: %v then %v", before, after)
			}
		})
	}
	low := newClient(t, srv, func(cfg *upstream.Config) { cfg.SegmentSize, cfg.MaxSegmentSize = 1<<20, 2<<20 })
	if got := low.MaxUploadBytes(); got != 2000<<20 {
		t.Fatalf("MaxUploadBytes with 2 MiB segments = %d", got)
	}
	for _, cfg := range []upstream.Config{
		{BaseURL: srv.URL, MaxSegmentSize: 4<<20 + 1},
		{BaseURL: srv.URL, SegmentSize: 5 << 20},
		{BaseURL: srv.URL, Dialect: upstream.DialectV1, MaxSegmentSize: 5_000_001},
	} {
		if _, err := upstream.New(cfg); !errors.Is(err, upstream.ErrInvalidParams) {
			t.Fatalf("New(%+v) = %v, want ErrInvalidParams", cfg, err)
		}
	}
}
