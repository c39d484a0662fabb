package upstream_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// genReader yields n pseudo-random bytes that sniff as MP4, hashing them
// as they go, without holding the file in memory.
type genReader struct {
	left  int64
	first bool
	src   *rand.ChaCha8
	h     hash.Hash
}

func newGen(n int64, seed byte) *genReader {
	return &genReader{left: n, first: true, src: rand.NewChaCha8([32]byte{seed}), h: sha256.New()}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.left)]
	_, _ = g.src.Read(p)
	if g.first && len(p) >= 12 {
		copy(p, "\x00\x00\x00\x18ftypmp42")
		g.first = false
	}
	if g.h != nil {
		g.h.Write(p)
	}
	g.left -= int64(len(p))
	return len(p), nil
}

// memPeak samples the process's memory until stopped.
type memPeak struct {
	heapInuse, sys atomic.Uint64
	stop           chan struct{}
	wg             sync.WaitGroup
}

func sampleMemory(every time.Duration) *memPeak {
	m := &memPeak{stop: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > m.heapInuse.Load() {
				m.heapInuse.Store(ms.HeapInuse)
			}
			if ms.Sys > m.sys.Load() {
				m.sys.Store(ms.Sys)
			}
			select {
			case <-t.C:
			case <-m.stop:
				return
			}
		}
	}()
	return m
}

func (m *memPeak) done() (heapInuse, sys uint64) {
	close(m.stop)
	m.wg.Wait()
	return m.heapInuse.Load(), m.sys.Load()
}

// BenchmarkMeasureThroughput uploads 256 MiB through the emulator with
// 50 ms of latency per request, at P=1 and P=4, and reports MB/s of each,
// their ratio and the process's peak memory (the emulator runs in the same
// process):
//
//	go test -run '^$' -bench MeasureThroughput -benchtime 1x ./upstream/
func BenchmarkMeasureThroughput(b *testing.B) {
	for range b.N {
		measureThroughput(b)
	}
}

func measureThroughput(t *testing.B) {
	const total = 256 << 20
	srv := xfaketest.New(t, xfake.Options{Latency: 50 * time.Millisecond, Seed: 20, SpillDir: t.TempDir()})
	rates := map[int]float64{}
	for _, p := range []int{1, 4} {
		c := newClient(t, srv, func(cfg *upstream.Config) {
			cfg.SegmentSize, cfg.Parallelism = upstream.DefaultSegmentSize, p
		})
		runtime.GC()
		mem := sampleMemory(10 * time.Millisecond)
		// Hash the stream beforehand so that the timed upload does not pay
		// for the client-side digest.
		pre := newGen(total, byte(p))
		if _, err := io.Copy(io.Discard, pre); err != nil {
			t.Fatal(err)
		}
		want := hex.EncodeToString(pre.h.Sum(nil))
		gen := newGen(total, byte(p))
		gen.h = nil
		start := time.Now()
		var m *upstream.Media
		var tInit, tStream time.Duration
		u, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: "video/mp4",
			MediaCategory: "tweet_video", TotalBytes: total})
		if err == nil {
			tInit = time.Since(start)
			_, err = u.ReadFrom(gen)
			tStream = time.Since(start) - tInit
		}
		if err == nil {
			m, err = u.Finish(context.Background())
		}
		elapsed := time.Since(start)
		heap, sys := mem.done()
		if err != nil {
			t.Fatal(err)
		}
		if info := srv.Media(t, m.ID); info.SHA256 != want {
			t.Fatalf("P=%d: sha256 mismatch", p)
		} else if info.MaxConcurrentAppends > p {
			t.Fatalf("P=%d: %d concurrent APPENDs", p, info.MaxConcurrentAppends)
		}
		_, peakBuf := upstream.BuffersHeld(c)
		rates[p] = float64(total) / 1e6 / elapsed.Seconds()
		t.ReportMetric(rates[p], fmt.Sprintf("MB/s_P%d", p))
		t.ReportMetric(float64(heap)/(1<<20), fmt.Sprintf("peak_heap_MiB_P%d", p))
		t.Logf("P=%d: 256 MiB in %v = %.1f MB/s (INIT %v, streaming %v, APPEND wait+FINALIZE %v); "+
			"peak HeapInuse %.1f MiB, peak Sys %.1f MiB, peak segment buffers %d",
			p, elapsed.Round(time.Millisecond), rates[p], tInit.Round(time.Millisecond), tStream.Round(time.Millisecond),
			(elapsed - tInit - tStream).Round(time.Millisecond), float64(heap)/(1<<20), float64(sys)/(1<<20), peakBuf)
	}
	t.ReportMetric(rates[4]/rates[1], "ratio_P4/P1")
}

// BenchmarkMeasureFaultTail uploads 160 files of 8 MiB (two 4 MiB segments),
// eight at a time, to an emulator with 20 ms of latency that fails 10 % of
// requests with a 503, a 500, a reset or a stall (30 s, then a dropped
// connection), with the Client's default settings, and reports the
// distribution of upload times (p50, p90, p99 and the maximum, seconds):
//
//	go test -run '^$' -bench MeasureFaultTail -benchtime 1x ./upstream/
func BenchmarkMeasureFaultTail(b *testing.B) {
	for range b.N {
		measureFaultTail(b)
	}
}

func measureFaultTail(t *testing.B) {
	const uploads, size, conc = 160, 8 << 20, 8
	srv := xfaketest.New(t, xfake.Options{Latency: 20 * time.Millisecond, FaultRate: 0.1, Seed: 40,
		SpillDir: t.TempDir(), RateLimits: xfake.NoRateLimits()})
	c, err := upstream.New(upstream.Config{BaseURL: srv.URL, Credentials: upstream.BearerToken("tok")})
	if err != nil {
		t.Fatal(err)
	}
	data := mp4(size, 40)
	times := make([]time.Duration, uploads)
	errs := make(chan error, uploads)
	next := make(chan int)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				start := time.Now()
				u, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: "video/mp4", MediaCategory: "tweet_video", TotalBytes: size})
				if err == nil {
					if _, err = u.ReadFrom(bytes.NewReader(data)); err == nil {
						_, err = u.Finish(context.Background())
					}
					if err != nil {
						u.Abort(err)
					}
				}
				times[i] = time.Since(start)
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	start := time.Now()
	for i := range uploads {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		failed++
		t.Logf("failed: %v", err)
	}
	slices.Sort(times)
	q := func(p float64) time.Duration {
		return times[min(len(times)-1, int(p*float64(len(times))))].Round(time.Millisecond)
	}
	st := srv.X.Stats()
	for name, p := range map[string]float64{"p50": 0.5, "p90": 0.9, "p99": 0.99} {
		t.ReportMetric(q(p).Seconds(), "s_"+name)
	}
	t.ReportMetric(times[len(times)-1].Seconds(), "s_max")
	t.ReportMetric(float64(failed), "failed")
	t.Logf("%d uploads of 8 MiB in %v, %d failed; faults injected %v; upload time p50 %v p90 %v p99 %v max %v",
		uploads, time.Since(start).Round(time.Millisecond), failed, st.Faults, q(0.5), q(0.9), q(0.99), times[len(times)-1].Round(time.Millisecond))
}
