package upstream_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream"
)

// drainX answers like X without doing X's work: it reads each request
// body to the end and answers INIT, APPEND and FINALIZE. It isolates the
// pipeline's own cost (buffers, segmenting, multipart framing, HTTP client)
// from the emulator's disk and hashing in the micro-benchmarks below; the
// byte-exact behaviour is tested against the emulator elsewhere.
type drainX struct{ bodyBytes atomic.Int64 }

func (d *drainX) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		n, _ := io.Copy(io.Discard, r.Body)
		d.bodyBytes.Add(n)
		_ = r.Body.Close()
	}
	body := `{"data":{"expires_at":1749908627578}}`
	switch {
	case strings.HasSuffix(r.URL.Path, "/initialize"):
		body = `{"data":{"id":"1912475018862166016","media_key":"7_1912475018862166016","expires_after_secs":86400}}`
	case strings.HasSuffix(r.URL.Path, "/finalize"):
		body = `{"data":{"id":"1912475018862166016","media_key":"7_1912475018862166016","size":1,"expires_after_secs":86400}}`
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

func benchClient(b *testing.B, d *drainX, p int) *upstream.Client {
	c, err := upstream.New(upstream.Config{BaseURL: "http://x.invalid", Transport: d,
		Credentials: upstream.BearerToken("tok"), Parallelism: p})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkPipeline pushes 64 MiB through the segment pipeline with 4 MiB
// segments, by Write (chunks as gRPC delivers them: each byte is copied
// once, into its segment) and by ReadFrom (a body read straight into the
// segment buffers: no copy besides the read). allocs/MiB and B/MiB are the
// heap allocations per megabyte uploaded, from runtime.MemStats.
func BenchmarkPipeline(b *testing.B) {
	const total = 64 << 20
	src := bytes.Repeat([]byte{0x00, 0x00, 0x00, 0x18, 'f', 't', 'y', 'p'}, total/8)
	for _, mode := range []string{"Write/256KiB", "ReadFrom"} {
		for _, p := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/P=%d", mode, p), func(b *testing.B) {
				d := &drainX{}
				c := benchClient(b, d, p)
				b.SetBytes(total)
				b.ReportAllocs()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				b.ResetTimer()
				for range b.N {
					u, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: "video/mp4", MediaCategory: "tweet_video", TotalBytes: total})
					if err != nil {
						b.Fatal(err)
					}
					if mode == "ReadFrom" {
						_, err = u.ReadFrom(bytes.NewReader(src))
					} else {
						for off := 0; off < total && err == nil; off += 256 << 10 {
							_, err = u.Write(src[off : off+256<<10])
						}
					}
					if err != nil {
						b.Fatal(err)
					}
					if _, err := u.Finish(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				runtime.ReadMemStats(&after)
				mib := float64(b.N) * total / (1 << 20)
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/mib, "allocs/MiB")
				b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/mib, "B/MiB")
				if sent := d.bodyBytes.Load(); sent < int64(b.N)*total {
					b.Fatalf("X received %d body bytes, want at least %d", sent, int64(b.N)*total)
				}
			})
		}
	}
}

// BenchmarkPlanSegments measures the planner over sizes from 1 byte to
// X's 16 GiB maximum.
func BenchmarkPlanSegments(b *testing.B) {
	b.ReportAllocs()
	sizes := []int64{1, 4 << 20, 4<<20 + 1, 512 << 20, 4000 << 20, 16 << 30}
	for i := range b.N {
		_, _, _ = upstream.PlanSegments(sizes[i%len(sizes)], 4<<20, 16<<20)
	}
}

var drainBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// drainHandler is drainX as a real HTTP server: it reads every body to
// the end (in 1 MiB reads, so that the server's share of the syscalls
// stays small) and answers like X.
func drainHandler(d *drainX) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := drainBufs.Get().(*[]byte)
		n, _ := io.CopyBuffer(struct{ io.Writer }{io.Discard}, r.Body, *buf)
		drainBufs.Put(buf)
		d.bodyBytes.Add(n)
		r.Body = http.NoBody
		resp, _ := d.RoundTrip(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
}

// BenchmarkLoopback pushes 64 MiB through the Client's own default
// transport to a draining HTTP server on loopback, so that the APPEND
// body path (multipart framing, net/http, the socket writes) is measured
// as X would see it, without the emulator's hashing and disk. cpu-ns/B is
// the process's user+system CPU (client and server together) per byte;
// count write syscalls with strace -f -c around this benchmark.
func BenchmarkLoopback(b *testing.B) {
	const total = 64 << 20
	src := bytes.Repeat([]byte{0x00, 0x00, 0x00, 0x18, 'f', 't', 'y', 'p'}, total/8)
	for _, p := range []int{1, 4} {
		b.Run(fmt.Sprintf("P=%d", p), func(b *testing.B) {
			d := &drainX{}
			srv := httptest.NewServer(drainHandler(d))
			defer srv.Close()
			c, err := upstream.New(upstream.Config{BaseURL: srv.URL, Credentials: upstream.BearerToken("tok"), Parallelism: p})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(total)
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				u, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: "video/mp4", MediaCategory: "tweet_video", TotalBytes: total})
				if err != nil {
					b.Fatal(err)
				}
				if _, err = u.ReadFrom(bytes.NewReader(src)); err != nil {
					b.Fatal(err)
				}
				if _, err := u.Finish(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			runtime.ReadMemStats(&after)
			mib := float64(b.N) * total / (1 << 20)
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/mib, "allocs/MiB")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/mib, "B/MiB")
			b.ReportMetric(float64(cpu.Nanoseconds())/(float64(b.N)*total), "cpu-ns/B")
			if sent := d.bodyBytes.Load(); sent < int64(b.N)*total {
				b.Fatalf("X received %d body bytes, want at least %d", sent, int64(b.N)*total)
			}
		})
	}
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
