package xfake_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// pattern is the random block large uploads are made of.
var pattern = filler(64<<10, 5)

// segmentReader generates segment i of a large upload on the fly: the
// pattern, rotated by an offset that depends on i, so that misplaced
// segments change the digest. It copies whole runs, which keeps it fast
// under the race detector.
type segmentReader struct {
	off, left int
}

func newSegment(i, size int) *segmentReader {
	return &segmentReader{off: (i * 7919) % len(pattern), left: size}
}

func (s *segmentReader) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), s.left)], pattern[s.off:])
	s.off = (s.off + n) % len(pattern)
	s.left -= n
	return n, nil
}

// TestLargeUploadBoundedMemory uploads 256 MiB, generated on the fly and
// streamed, while sampling the process heap: the emulator spills segments
// to disk, so the peak must stay far below the upload's size.
func TestLargeUploadBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("large upload skipped under -short")
	}
	const (
		segSize = 4 << 20
		segs    = 64 // 256 MiB
		workers = 4
		maxHeap = 64 << 20
	)
	c := newClient(t, xfake.Options{})
	id := c.v2Init("video/mp4", segSize*segs, "amplify_video")

	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	work := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := streamAppend(c, id, i, newSegment(i, segSize)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := segs - 1; i >= 0; i-- {
		work <- i
	}
	close(work)
	wg.Wait()
	fin := c.v2Finalize(id)
	close(stop)
	<-sampled
	wantStatus(t, fin, http.StatusOK)

	h := sha256.New()
	for i := range segs {
		_, _ = io.Copy(h, newSegment(i, segSize))
	}
	info := c.srv.Media(t, id)
	if info.SHA256 != hex.EncodeToString(h.Sum(nil)) || info.Size != segSize*segs {
		t.Errorf("inspection %+v", info)
	}
	t.Logf("peak HeapInuse %.1f MiB for a %d MiB upload", float64(peak.Load())/(1<<20), segSize*segs>>20)
	if p := peak.Load(); p >= maxHeap {
		t.Errorf("peak HeapInuse %d MiB, want < %d MiB", p>>20, maxHeap>>20)
	}
}

// streamAppend sends one multipart APPEND whose media streams from src.
func streamAppend(c *client, id string, idx int, src io.Reader) error {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := mw.WriteField("segment_index", fmt.Sprint(idx))
		if err == nil {
			var w io.Writer
			if w, err = mw.CreateFormFile("media", "blob"); err == nil {
				_, err = io.Copy(w, src)
			}
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	r, err := c.try(http.MethodPost, "/2/media/upload/"+id+"/append", mw.FormDataContentType(), pr)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("append %d: %s", idx, r)
	}
	return nil
}
