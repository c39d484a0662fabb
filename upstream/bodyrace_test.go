package upstream

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestEarlyAnswerReleasesNoBufferInUse has X reject every APPEND before
// reading its body. net/http may still be sending that body when the
// answer arrives; the segment buffer must not go back to the pool (and be
// refilled by another upload) until nothing reads it. Under -race, a buffer
// released too early is reported as a data race.
func TestEarlyAnswerReleasesNoBufferInUse(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/initialize") {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"data":{"id":"1912475018862166016","media_key":"7_1","expires_after_secs":86400}}`)
			return
		}
		// Refused without reading the body, as an edge proxy does.
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"title":"Invalid Request","detail":"refused early","type":"about:blank","status":400}`)
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.SegmentSize, cfg.MaxInFlight, cfg.Parallelism = 512<<10, 1, 1 })
	data := bytes.Repeat([]byte{0, 0, 0, 24, 'f', 't', 'y', 'p'}, (2<<20)/8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := c.Begin(context.Background(), nil, InitParams{MediaType: "video/mp4", MediaCategory: "tweet_video", TotalBytes: int64(len(data))})
			if err != nil {
				t.Error(err)
				return
			}
			for off := 0; off < len(data); off += 64 << 10 {
				if _, err := u.Write(data[off : off+64<<10]); err != nil {
					break
				}
			}
			if _, err := u.Finish(context.Background()); err == nil {
				t.Error("an upload whose APPENDs were refused succeeded")
			}
		}()
	}
	wg.Wait()
}
