package upstream_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
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

// TestTraceparentReachesX checks that, when opted in, X sees the
// attempt's span as parent, and that a rate-limit hold is an event on the
// caller's span.
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
		cfg.TracerProvider, cfg.PropagateTraceContext, cfg.RateLimitMaxWait = tp, true, 5*time.Second
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

// TestXSeesNoCallerContext uploads in a context carrying the caller's
// tracestate and baggage, with the global propagator set to inject both:
// X gets neither, and a traceparent only when the Client opts in. It sets
// the otel global, so it does not run in parallel.
func TestXSeesNoCallerContext(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ts, err := trace.ParseTraceState("vendor=caller-secret")
	if err != nil {
		t.Fatal(err)
	}
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true})
	member, _ := baggage.NewMember("user", "alice")
	bag, _ := baggage.New(member)
	ctx := baggage.ContextWithBaggage(trace.ContextWithRemoteSpanContext(context.Background(), remote), bag)

	for _, optIn := range []bool{false, true} {
		t.Run(fmt.Sprintf("PropagateTraceContext=%v", optIn), func(t *testing.T) {
			x := xfake.New(xfake.Options{Seed: 23})
			var mu sync.Mutex
			var headers []http.Header
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				headers = append(headers, r.Header.Clone())
				mu.Unlock()
				x.ServeHTTP(w, r)
			}))
			t.Cleanup(hs.Close)
			t.Cleanup(func() { _ = x.Close() })
			c := newClient(t, &xfaketest.Server{URL: hs.URL, X: x, HTTP: hs}, func(cfg *upstream.Config) {
				cfg.TracerProvider, cfg.PropagateTraceContext = tp, optIn
			})
			uctx, span := tp.Tracer("test").Start(ctx, "upload")
			data := payload(3*64*kib, 23)
			m, err := upstream.UploadAll(uctx, c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}, bytes.NewReader(data))
			span.End()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Status(uctx, nil, m.ID); err == nil {
				t.Fatal("STATUS of ready media succeeded")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(headers) != 6 { // INIT, 3 APPENDs, FINALIZE, STATUS
				t.Fatalf("X saw %d requests, want 6", len(headers))
			}
			for _, h := range headers {
				if v := h.Values("baggage"); len(v) > 0 {
					t.Fatalf("X got baggage %q", v)
				}
				if v := h.Values("tracestate"); len(v) > 0 {
					t.Fatalf("X got tracestate %q", v)
				}
				got := h.Get("traceparent")
				if !optIn && got != "" {
					t.Fatalf("X got traceparent %q without the opt-in", got)
				}
				if optIn && !strings.HasPrefix(got, "00-"+remote.TraceID().String()+"-") {
					t.Fatalf("X got traceparent %q, want one in the caller's trace", got)
				}
			}
			// In the process the X calls stay children of the upload span.
			children := 0
			for _, s := range rec.Ended() {
				if strings.HasPrefix(s.Name(), "X ") && s.Parent().SpanID() == span.SpanContext().SpanID() {
					children++
				}
			}
			if children != 6 {
				t.Fatalf("%d X spans are children of the upload span, want 6", children)
			}
		})
	}
}
