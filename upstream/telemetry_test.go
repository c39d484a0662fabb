package upstream_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"mediagw/upstream"
	"mediagw/upstream/xfake"
	"mediagw/upstream/xfake/xfaketest"
)

func spanAttr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestRetriesAreSpans uploads through 503s: every attempt is its own span,
// the retried ones say why, and each segment's last attempt succeeded.
func TestRetriesAreSpans(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	srv := xfaketest.New(t, xfake.Options{Seed: 21, FaultRate: 0.3, FaultKinds: []xfake.FaultKind{xfake.Fault503}})
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.TracerProvider, cfg.MaxAttempts = tp, 20 })
	data := payload(10*64*kib, 21)
	ctx, parent := tp.Tracer("test").Start(context.Background(), "parent")
	m, err := upstream.UploadAll(ctx, c, upstream.BearerToken("tok"), upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}, bytes.NewReader(data))
	parent.End()
	if err != nil {
		t.Fatal(err)
	}
	checkMedia(t, srv, m, data, 10)

	last := map[string]sdktrace.ReadOnlySpan{} // by command and segment: the last attempt
	retried := 0
	for _, s := range rec.Ended() {
		if s.Name() == "parent" {
			continue
		}
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Fatalf("span %s is not a child of the caller's span", s.Name())
		}
		if got := "X " + spanAttr(s, "x.command"); got != s.Name() {
			t.Fatalf("span %s has x.command %s", s.Name(), got)
		}
		if reason := spanAttr(s, "x.retry_reason"); reason != "" {
			retried++
			if reason != "server_error" || spanAttr(s, "http.response.status_code") != "503" {
				t.Fatalf("retried span %s: reason %q status %s", s.Name(), reason, spanAttr(s, "http.response.status_code"))
			}
		}
		key := s.Name() + "#" + spanAttr(s, "x.segment_index")
		if prev, ok := last[key]; !ok || spanAttr(s, "x.attempt") > spanAttr(prev, "x.attempt") {
			last[key] = s
		}
	}
	if retried == 0 || int64(retried) != srv.X.Stats().FaultsInjected {
		t.Fatalf("%d retried spans, the emulator injected %d faults", retried, srv.X.Stats().FaultsInjected)
	}
	if len(last) != 12 { // INIT, 10 APPENDs, FINALIZE
		t.Fatalf("%d distinct calls traced, want 12", len(last))
	}
	for key, s := range last {
		if st := spanAttr(s, "http.response.status_code"); st != "200" && st != "201" && st != "202" && st != "204" {
			t.Fatalf("last attempt of %s answered %s", key, st)
		}
	}
}

// TestTraceparentReachesX checks that X sees the attempt's span as parent,
// and that a rate-limit hold is an event on the caller's span.
func TestTraceparentReachesX(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	x := xfake.New(xfake.Options{Seed: 22, RateLimits: map[string]xfake.RateLimit{"append": {Limit: 2, Window: time.Second}}})
	var mu sync.Mutex
	var parents []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		parents = append(parents, r.Header.Get("traceparent"))
		mu.Unlock()
		x.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = x.Close() })
	srv := &xfaketest.Server{URL: ts.URL, X: x, HTTP: ts}
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.TracerProvider, cfg.Propagator, cfg.RateLimitMaxWait = tp, propagation.TraceContext{}, 5*time.Second
	})
	data := payload(4*64*kib, 22)
	ctx, parent := tp.Tracer("test").Start(context.Background(), "parent")
	_, err := upstream.UploadAll(ctx, c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}, bytes.NewReader(data))
	parent.End()
	if err != nil {
		t.Fatal(err)
	}
	spans := map[string]bool{}
	waits := 0
	for _, s := range rec.Ended() {
		spans[fmt.Sprintf("00-%s-%s-01", s.SpanContext().TraceID(), s.SpanContext().SpanID())] = true
		for _, ev := range s.Events() {
			if ev.Name == "x.rate_limit.wait" {
				waits++
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// INIT, 4 APPENDs and FINALIZE, plus the APPENDs X answered 429 (sent
	// in parallel before the first answer told the client the window).
	if want := 6 + int(x.Stats().RateLimited); len(parents) != want {
		t.Fatalf("X saw %d requests, want %d", len(parents), want)
	}
	for _, p := range parents {
		if !spans[p] {
			t.Fatalf("X saw traceparent %q, which is no recorded attempt span", p)
		}
	}
	if waits == 0 {
		t.Fatalf("%d rate-limit wait events on the caller's span, want some", waits)
	}
}
