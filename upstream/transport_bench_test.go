package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkTransport uploads 64 MiB (16 APPENDs of 4 MiB) to a draining
// server on loopback, over HTTP and HTTPS, through the Client's own
// transport ("own": bodies written in place) and through a clone of
// net/http's DefaultTransport ("stdlib": what the Client used before, each
// body copied through a 32 KiB buffer), so that the two are compared in one
// process. cpu-ns/B is the process's CPU (client and server) per byte.
func BenchmarkTransport(b *testing.B) {
	const total = 64 << 20
	src := bytes.Repeat([]byte("0123456789abcdef"), total/16)
	bufs := sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}
	drain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := bufs.Get().(*[]byte)
		_, _ = io.CopyBuffer(struct{ io.Writer }{io.Discard}, r.Body, *buf)
		bufs.Put(buf)
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/initialize") {
			_, _ = io.WriteString(w, `{"data":{"id":"1912475018862166016","expires_after_secs":86400}}`)
			return
		}
		_, _ = io.WriteString(w, `{"data":{"expires_at":1749908627578}}`)
	})
	for _, scheme := range []string{"http", "https"} {
		srv := httptest.NewUnstartedServer(drain)
		var tlsConf *tls.Config
		if scheme == "https" {
			srv.StartTLS()
			pool := x509.NewCertPool()
			pool.AddCert(srv.Certificate())
			tlsConf = &tls.Config{RootCAs: pool}
		} else {
			srv.Start()
		}
		for _, tr := range []string{"own", "stdlib"} {
			b.Run(scheme+"/"+tr, func(b *testing.B) {
				c, err := New(Config{BaseURL: srv.URL, Credentials: BearerToken("tok")})
				if err != nil {
					b.Fatal(err)
				}
				c.rt = newTransport(c.cfg, tlsConf)
				if tr == "stdlib" {
					t := http.DefaultTransport.(*http.Transport).Clone()
					t.TLSClientConfig, t.MaxIdleConnsPerHost = tlsConf, 64
					c.rt = t
				}
				b.SetBytes(total)
				b.ReportAllocs()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				cpu0 := processCPU()
				b.ResetTimer()
				for range b.N {
					if _, err := uploadAll(context.Background(), c, nil, InitParams{MediaType: "video/mp4", TotalBytes: total}, bytes.NewReader(src)); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				cpu := processCPU() - cpu0
				runtime.ReadMemStats(&after)
				mib := float64(b.N) * total / (1 << 20)
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/mib, "allocs/MiB")
				b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/mib, "B/MiB")
				b.ReportMetric(float64(cpu.Nanoseconds())/(float64(b.N)*total), "cpu-ns/B")
				closeIdle(c)
			})
		}
		srv.Close()
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
