package upstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWatchdogNeedsProgress drives a watchdog with application-level
// progress only (no TCP counters, as on systems without TCP_INFO): it
// stays quiet while something moves every stall/8, and fires no sooner
// than the stall timeout once nothing does.
func TestWatchdogNeedsProgress(t *testing.T) {
	t.Parallel()
	const stall = 400 * time.Millisecond
	fired := make(chan time.Time, 1)
	w := watch(stall, func() { fired <- time.Now() })
	for range 20 { // a second of progress every 50 ms
		time.Sleep(50 * time.Millisecond)
		w.moved()
	}
	select {
	case <-fired:
		t.Fatal("the watchdog fired while progress was being made")
	default:
	}
	last := time.Now()
	select {
	case at := <-fired:
		if d := at.Sub(last); d < stall || d > 2*stall {
			t.Fatalf("fired %v after the last progress, want %v to %v", d, stall, 2*stall)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watchdog did not fire")
	}
	if !w.stop() {
		t.Fatal("stop does not report the firing")
	}
}

// TestDetachEndsWriteInFlight writes a 64 MiB body to a peer that never
// reads, the way the Client's connections do (net/http's LimitReader in
// front of the body, bodyConn behind it). The write blocks in the kernel;
// detach must end it and return, and only then may the buffer be reused.
func TestDetachEndsWriteInFlight(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c // held open, never read
		}
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	defer peer.Close()
	seg := make([]byte, 64<<20)
	var bodies detachables
	b := bodies.open([][]byte{[]byte("head"), seg, []byte("tail")}, func() {})
	conn := &bodyConn{Conn: raw}
	written := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, io.LimitReader(b, int64(len(seg))+8))
		written <- err
	}()
	// The write is in writeTo (which holds the body until it returns); 64 MiB
	// cannot fit in the socket buffers of a peer that never reads, so it
	// cannot end without the detach.
	eventually(t, 10*time.Second, "the body's write started", func() bool { return b.writing.Load() != nil })
	select {
	case err := <-written:
		t.Fatalf("the write ended before detach: %v", err)
	default:
	}
	done := make(chan struct{})
	go func() { bodies.detach(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("detach did not end the write in flight")
	}
	// detach took the body's lock, which writeTo holds through the writev:
	// no system call reads the buffer any more.
	if b.writing.Load() != nil {
		t.Fatal("detach returned while the write was still running")
	}
	select {
	case err := <-written:
		if err == nil {
			t.Fatal("the interrupted write reported success")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the interrupted write did not return")
	}
	if _, err := b.Read(make([]byte, 10)); !errors.Is(err, errBodyDetached) {
		t.Fatalf("read after detach: %v", err)
	}
}

// TestTLSUploadInPlace uploads through the Client's own TLS dialing to an
// HTTPS server that offers HTTP/2: the requests must use HTTP/1.1 and the
// media must arrive byte for byte.
func TestTLSUploadInPlace(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var media bytes.Buffer
	protos := map[string]int{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos[r.Proto]++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/initialize"):
			_, _ = io.WriteString(w, `{"data":{"id":"1912475018862166016","expires_after_secs":86400}}`)
		case strings.HasSuffix(r.URL.Path, "/append"):
			_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			mr := multipart.NewReader(r.Body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				if p.FormName() == "media" {
					mu.Lock()
					_, _ = io.Copy(&media, p)
					mu.Unlock()
				}
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			_, _ = io.WriteString(w, `{"data":{"id":"1912475018862166016"}}`)
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c, err := New(Config{BaseURL: srv.URL, Credentials: BearerToken("tok"), SegmentSize: 256 << 10, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.rt = newTransport(c.cfg, &tls.Config{RootCAs: pool})
	data := bytes.Repeat([]byte("0123456789abcdef"), (1<<20+100)/16)
	if _, err := uploadAll(context.Background(), c, nil, InitParams{MediaType: "video/mp4", TotalBytes: int64(len(data))}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want, got := sha256.Sum256(data), sha256.Sum256(media.Bytes())
	if got != want {
		t.Fatalf("X got %d bytes (sha256 %s), want %d (%s)", media.Len(), hex.EncodeToString(got[:]), len(data), hex.EncodeToString(want[:]))
	}
	if len(protos) != 1 || protos["HTTP/1.1"] != 7 { // INIT, 5 APPENDs, FINALIZE
		t.Fatalf("protocols %v, want 7 requests over HTTP/1.1", protos)
	}
}
