package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// env is mediagw running in-process on loopback ports against an emulator.
type env struct {
	t       *testing.T
	x       *xfaketest.Server
	app     *app
	client  mediagwv1.MediaUploadServiceClient
	cc      *grpc.ClientConn // client's connection
	httpURL string
	// adminURL serves /metrics, /healthz, /readyz and pprof.
	adminURL string
	logs     *syncBuffer
	// metrics is the /metrics handler, readable after stop too.
	metrics http.Handler
	cancel  context.CancelFunc
	done    chan error
}

const testToken = "test-token"

// newEnv starts the emulator with xopts and mediagw with the given extra
// flags (after the test defaults: loopback ports, the emulator's URL, a
// 64 KiB segment size so small files span several segments).
func newEnv(t *testing.T, xopts xfake.Options, flags ...string) *env {
	t.Helper()
	return newEnvWith(t, xopts, nil, flags...)
}

// newEnvWith is newEnv with a given tracer provider (nil: none); metrics
// always go to a registry of this env, served on its /metrics.
func newEnvWith(t *testing.T, xopts xfake.Options, tp trace.TracerProvider, flags ...string) *env {
	t.Helper()
	return newEnvFront(t, xopts, tp, nil, flags...)
}

// newEnvFront is newEnvWith with the emulator's handler passed through
// front (nil: none), which stands between mediagw and X.
func newEnvFront(t *testing.T, xopts xfake.Options, tp trace.TracerProvider, front func(http.Handler) http.Handler, flags ...string) *env {
	t.Helper()
	if xopts.Tokens == nil {
		xopts.Tokens = []string{testToken}
	}
	if xopts.ProcessingTime == 0 {
		xopts.ProcessingTime = 1500 * time.Millisecond
	}
	if xopts.Seed == 0 {
		xopts.Seed = 1
	}
	x := xfaketest.NewWrapped(t, xopts, front)
	e := startApp(t, x.URL, tp, flags...)
	e.x = x
	return e
}

// startApp runs mediagw against the X at xURL, or on its built-in
// emulator when xURL is empty.
func startApp(t *testing.T, xURL string, tp trace.TracerProvider, flags ...string) *env {
	t.Helper()
	args := []string{
		"--grpc-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0", "--admin-addr=127.0.0.1:0",
		"--segment-size=64KiB", "--log-level=debug",
		"--ledger=" + filepath.Join(t.TempDir(), "ledger.db"),
		// Most tests send pseudo-random bytes behind a signature; the media
		// checks have tests of their own with real media (media_test.go).
		"--media-checks=off",
	}
	if xURL == "" {
		args = append(args, "--emulator")
	} else {
		args = append(args, "--x-api-url="+xURL, "--x-token="+testToken)
	}
	args = append(args, flags...)
	cfg, err := parseConfig(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	log := slog.New(traceHandler{slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})})
	ctx, cancel := context.WithCancel(context.Background())
	tel, err := setupTelemetry(ctx, func(string) string { return "" })
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if tp != nil {
		tel.tp = tp
	}
	a, err := newApp(ctx, cfg, log, tel)
	if err != nil {
		cancel()
		t.Fatalf("newApp: %v", err)
	}
	scheme := "http://"
	if a.tls != nil {
		scheme = "https://"
	}
	e := &env{t: t, app: a, httpURL: scheme + a.httpLis.Addr().String(), logs: logs, metrics: tel.metrics, cancel: cancel, done: make(chan error, 1)}
	if a.adminLis != nil {
		e.adminURL = "http://" + a.adminLis.Addr().String()
	}
	go func() { e.done <- a.serve(ctx) }()
	conn, err := grpc.NewClient(a.grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e.cc = conn
	e.client = mediagwv1.NewMediaUploadServiceClient(conn)
	t.Cleanup(func() {
		_ = conn.Close()
		e.stop()
		if t.Failed() {
			t.Logf("mediagw logs:\n%s", logs.String())
		}
	})
	return e
}

// stop shuts mediagw down and waits for it.
func (e *env) stop() {
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("serve: %v", err)
		}
		e.done <- nil
	case <-time.After(30 * time.Second):
		e.t.Error("mediagw did not stop within 30s")
	}
}

// stopped stops mediagw and returns its logs and its /metrics text. Every
// call has returned by then, so every span has ended (a SpanRecorder has
// it at once) and every line is written.
func (e *env) stopped() (logs, metrics string) {
	e.t.Helper()
	e.stop()
	rec := httptest.NewRecorder()
	e.metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		e.t.Fatalf("/metrics after the stop: HTTP %d", rec.Code)
	}
	return e.logs.String(), rec.Body.String()
}

// openUpload starts an Upload stream, sends the start message for data and
// its first n bytes, and leaves the stream open.
func (e *env) openUpload(ctx context.Context, data []byte, n int) mediagwv1.MediaUploadService_UploadClient {
	e.t.Helper()
	stream, err := e.client.Upload(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = stream.Send(&mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Start{Start: &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}}})
	_ = stream.Send(&mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Chunk{Chunk: data[:n]}})
	return stream
}

// waitServed waits for serve to return after e.cancel, failing with why
// when it has not within 10s.
func (e *env) waitServed(why string) {
	e.t.Helper()
	select {
	case err := <-e.done:
		e.done <- err
	case <-time.After(10 * time.Second):
		e.t.Fatal(why)
	}
}

// upload sends start and data over gRPC in chunks whose sizes come from
// chunk (called with the chunk number).
func (e *env) upload(ctx context.Context, start *mediagwv1.UploadStart, data []byte, chunk func(int) int) (*mediagwv1.UploadResponse, error) {
	return uploadVia(ctx, e.client, start, data, chunk)
}

// uploadVia is env.upload through the given client.
func uploadVia(ctx context.Context, client mediagwv1.MediaUploadServiceClient, start *mediagwv1.UploadStart, data []byte, chunk func(int) int) (*mediagwv1.UploadResponse, error) {
	stream, err := client.Upload(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Start{Start: start}}); err != nil {
		return stream.CloseAndRecv()
	}
	for i := 0; len(data) > 0; i++ {
		n := min(max(chunk(i), 1), len(data))
		if err := stream.Send(&mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Chunk{Chunk: data[:n]}}); err != nil {
			if errors.Is(err, io.EOF) {
				return stream.CloseAndRecv()
			}
			return nil, err
		}
		data = data[n:]
	}
	return stream.CloseAndRecv()
}

func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-access-token", token)
}

func fixed(n int) func(int) int { return func(int) int { return n } }

// media returns n bytes that start like a file of mediaType and continue
// with seeded pseudo-random bytes.
func media(mediaType string, n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	var magic string
	switch mediaType {
	case "video/mp4", "video/quicktime":
		magic = "\x00\x00\x00\x18ftypmp42"
	case "image/png":
		magic = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
	case "image/gif":
		magic = "GIF89a"
	case "video/webm":
		magic = "\x1a\x45\xdf\xa3"
	case "video/mp2t":
		magic = "\x47"
	case "text/srt":
		for i := range b {
			b[i] = 'a' + b[i]%26
		}
	}
	copy(b, magic)
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkStored asserts the emulator assembled exactly data for id.
func (e *env) checkStored(id string, data []byte) {
	e.t.Helper()
	info := e.x.Media(e.t, id)
	if info.SHA256 != sum(data) || info.Size != int64(len(data)) {
		e.t.Fatalf("media %s at X: sha256 %s size %d; want %s size %d", id, info.SHA256, info.Size, sum(data), len(data))
	}
}

// uploadLogs returns the "upload" summary lines mediagw logged.
func (e *env) uploadLogs() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "upload" {
			out = append(out, m)
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent writers; every write
// is announced to await.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written changes
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.b.Write(p)
	s.mu.Unlock()
	s.written.notify()
	return n, err
}

// await waits up to d for text in the buffer.
func (s *syncBuffer) await(t testing.TB, d time.Duration, text string) {
	t.Helper()
	s.written.await(t, d, fmt.Sprintf("no log line with %q", text), func() bool { return strings.Contains(s.String(), text) })
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
