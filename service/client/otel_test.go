package client

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// seen is a MediaUploadService that records the metadata of GetStatus.
type seen struct {
	mediagwv1.UnimplementedMediaUploadServiceServer
	md chan metadata.MD
}

func (s seen) GetStatus(ctx context.Context, _ *mediagwv1.GetStatusRequest) (*mediagwv1.ProcessingStatus, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.md <- md
	return &mediagwv1.ProcessingStatus{MediaId: "1", State: mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED}, nil
}

// TestCallMetadata: a call carries the caller's trace context (otelgrpc
// over gRPC, the propagator's headers over REST), the bearer token of
// the token source and the X user token of the context.
func TestCallMetadata(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	prop := propagation.TraceContext{}
	ctx, span := tp.Tracer("test").Start(context.Background(), "caller")
	defer span.End()
	traceID := span.SpanContext().TraceID().String()
	ctx = ContextWithXToken(ctx, "x-user-token")
	tokens := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "caller-jwt"})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	s := seen{md: make(chan metadata.MD, 1)}
	mediagwv1.RegisterMediaUploadServiceServer(srv, s)
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	c, err := New(l.Addr().String(), WithInsecure(), WithTokenSource(tokens),
		WithOTel(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.GetStatus(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	md := <-s.md
	if tp := strings.Join(md.Get("traceparent"), ""); !strings.Contains(tp, traceID) {
		t.Errorf("gRPC traceparent %q, want trace %s", tp, traceID)
	}
	if a, x := md.Get("authorization"), md.Get("x-access-token"); len(a) != 1 || a[0] != "Bearer caller-jwt" || len(x) != 1 || x[0] != "x-user-token" {
		t.Errorf("gRPC authorization %q, x-access-token %q", a, x)
	}

	headers := make(chan http.Header, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers <- r.Header.Clone()
		_, _ = w.Write([]byte(`{"media_id":"1","state":"PROCESSING_STATE_SUCCEEDED"}`))
	}))
	defer hs.Close()
	otelSetPropagator(t, prop)
	rc, err := New("", WithREST(hs.URL), WithTokenSource(tokens))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := rc.GetStatus(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	h := <-headers
	if !strings.Contains(h.Get("Traceparent"), traceID) || h.Get("Authorization") != "Bearer caller-jwt" || h.Get("X-Access-Token") != "x-user-token" {
		t.Errorf("REST headers traceparent %q authorization %q x-access-token %q", h.Get("Traceparent"), h.Get("Authorization"), h.Get("X-Access-Token"))
	}
}

// otelSetPropagator sets the global propagator for the test.
func otelSetPropagator(t *testing.T, p propagation.TextMapPropagator) {
	old := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(p)
	t.Cleanup(func() { otel.SetTextMapPropagator(old) })
}
