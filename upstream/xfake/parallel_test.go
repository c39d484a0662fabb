package xfake_test

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// TestParallelOutOfOrderAppends sends segments in parallel, in random
// order, each first as garbage of another size and then for real, some
// twice at once; the assembled bytes must still hash right.
func TestParallelOutOfOrderAppends(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{Bandwidth: 2 << 20})
	const segs, size = 24, 64 << 10
	data := mp4(segs * size)
	id := c.v2Init("video/mp4", len(data), "amplify_video")
	order := rand.New(rand.NewPCG(1, 2)).Perm(segs)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				seg := data[i*size : (i+1)*size]
				if r := c.v2Append(id, i, filler(size/2+i, uint64(i))); r.status != http.StatusOK {
					t.Errorf("garbage %d: %s", i, r)
				}
				sends := 1
				if i%3 == 0 {
					sends = 2 // the same segment twice at once
				}
				var dup sync.WaitGroup
				for range sends {
					dup.Add(1)
					go func() {
						defer dup.Done()
						if r := c.v2Append(id, i, seg); r.status != http.StatusOK {
							t.Errorf("segment %d: %s", i, r)
						}
					}()
				}
				dup.Wait()
			}
		}()
	}
	for _, i := range order {
		work <- i
	}
	close(work)
	wg.Wait()

	wantStatus(t, c.v2Finalize(id), http.StatusOK)
	info := c.srv.Media(t, id)
	sum := sha256.Sum256(data)
	if info.SHA256 != hex.EncodeToString(sum[:]) || info.Size != int64(len(data)) || info.Segments != segs {
		t.Errorf("inspection %+v", info)
	}
	if want := segs*2 + segs/3; info.AppendRequests != want {
		t.Errorf("append_requests %d, want %d", info.AppendRequests, want)
	}
	if info.MaxConcurrentAppends < 2 || c.srv.X.Stats().MaxConcurrentAppends < 2 {
		t.Errorf("max concurrent appends %d (stats %d), want >= 2", info.MaxConcurrentAppends, c.srv.X.Stats().MaxConcurrentAppends)
	}
}

// TestReplacedSegmentAfterHashing re-sends a segment the running digest has
// already consumed: the digest at FINALIZE must be that of the new bytes.
func TestReplacedSegmentAfterHashing(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{})
	const size = 1000
	data := mp4(3 * size)
	id := c.v2Init("video/mp4", len(data), "tweet_video")
	for _, a := range []struct {
		idx  int
		data []byte
	}{
		{0, filler(size, 9)}, // hashed at once: it starts the prefix
		{1, data[size : 2*size]},
		{0, data[:size]}, // replaces a hashed segment
		{2, data[2*size:]},
	} {
		if r := c.v2Append(id, a.idx, a.data); r.status != http.StatusOK {
			t.Fatalf("APPEND %d: %s", a.idx, r)
		}
	}
	if r := c.v2Finalize(id); r.status != http.StatusOK {
		t.Fatalf("FINALIZE: %s", r)
	}
	want := sha256.Sum256(data)
	if got := c.srv.Media(t, id).SHA256; got != hex.EncodeToString(want[:]) {
		t.Fatalf("sha256 %s, want %s (of the replacement bytes)", got, hex.EncodeToString(want[:]))
	}
}
