package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/buildinfo"
	"github.com/mediagw/mediagw/upstream/xfake"
)

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

// endedSpans stops mediagw, which waits for every call, and returns the
// spans rec holds then: all of them, a stray extra one included.
func endedSpans(e *env, rec *tracetest.SpanRecorder) []sdktrace.ReadOnlySpan {
	e.t.Helper()
	e.stop()
	return rec.Ended()
}

func attrOf(s sdktrace.ReadOnlySpan, key string) (string, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit(), true
		}
	}
	return "", false
}

// TestRESTUploadSpanTree checks the exact span tree of one REST upload:
// HTTP server → gRPC client → gRPC server → upload → X INIT, X APPEND × n,
// X FINALIZE, all in the caller's trace and under the caller's span.
func TestRESTUploadSpanTree(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e := newEnvWith(t, xfake.Options{}, tp)
	data := media("video/mp4", 4*(64<<10)-100, 11) // four 64 KiB segments, the last short
	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=video/mp4", bytes.NewReader(data))
	req.Header.Set("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	code, out, _ := restUpload(t, req)
	if code != http.StatusOK {
		t.Fatalf("HTTP %d %v", code, out)
	}
	// HTTP server, upload, INIT, four APPENDs, FINALIZE: no gRPC hop.
	const want = 1 + 1 + 1 + 4 + 1
	spans := endedSpans(e, rec)
	if len(spans) != want {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("%d spans %v, want %d", len(spans), names, want)
	}
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s.SpanContext().TraceID().String() != callerTrace {
			t.Fatalf("span %q has trace %s, want the caller's %s", s.Name(), s.SpanContext().TraceID(), callerTrace)
		}
		byID[s.SpanContext().SpanID()] = s
	}
	parentName := func(s sdktrace.ReadOnlySpan) string {
		if p, ok := byID[s.Parent().SpanID()]; ok {
			return p.Name() + "/" + p.SpanKind().String()
		}
		return "remote:" + s.Parent().SpanID().String()
	}
	var appends []string
	counts := map[string]int{}
	for _, s := range spans {
		key := s.Name() + "/" + s.SpanKind().String()
		counts[key]++
		wantParent := map[string]string{
			"POST /v1/media:upload/server": "remote:" + callerSpan,
			"upload/internal":              "POST /v1/media:upload/server",
			"X INIT/client":                "upload/internal",
			"X APPEND/client":              "upload/internal",
			"X FINALIZE/client":            "upload/internal",
		}[key]
		if wantParent == "" {
			t.Fatalf("unexpected span %s", key)
		}
		if got := parentName(s); got != wantParent {
			t.Fatalf("span %s has parent %s, want %s", key, got, wantParent)
		}
		if s.Name() == "X APPEND" {
			idx, _ := attrOf(s, "x.segment_index")
			n, _ := attrOf(s, "x.bytes")
			st, _ := attrOf(s, "http.response.status_code")
			appends = append(appends, idx+":"+n+":"+st)
		}
	}
	if counts["X APPEND/client"] != 4 || counts["X INIT/client"] != 1 || counts["X FINALIZE/client"] != 1 {
		t.Fatalf("span counts %v", counts)
	}
	sort.Strings(appends)
	if got, want := strings.Join(appends, " "), "0:65536:200 1:65536:200 2:65536:200 3:65436:200"; got != want {
		t.Fatalf("APPEND spans (index:bytes:status) %s, want %s", got, want)
	}
	for _, s := range spans {
		if s.Name() != "upload" {
			continue
		}
		for key, want := range map[string]string{
			"media.type": "video/mp4", "media.category": "tweet_video", "media.total_bytes": fmt.Sprint(len(data)),
			"x.media_id": out["media_id"].(string), "upload.segment_size": "65536", "upload.segments": "4", "upload.parallelism": "4",
			"upload.transport": "rest",
		} {
			if got, _ := attrOf(s, key); got != want {
				t.Errorf("upload span %s = %q, want %q", key, got, want)
			}
		}
	}
	// The trace id is in the upload's log line too.
	if l := e.uploadLogs(); len(l) != 1 || l[0]["trace_id"] != callerTrace {
		t.Fatalf("upload log %v, want trace_id %s", l, callerTrace)
	}
}

// traceReceiver is a real OTLP/gRPC trace endpoint.
type traceReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
	svc   string
	ver   string
}

func (r *traceReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				r.svc = kv.GetValue().GetStringValue()
			}
			if kv.GetKey() == "service.version" {
				r.ver = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.names = append(r.names, s.GetName())
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestOTLPExport configures tracing from the OTEL_* environment, as an
// operator does, and checks the spans reach an OTLP receiver over gRPC.
func TestOTLPExport(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	recv := &traceReceiver{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, recv)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)

	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+l.Addr().String())
	t.Setenv("OTEL_SERVICE_NAME", "mediagw-otlp-test")
	tel, err := setupTelemetry(context.Background(), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, xfake.Options{}, tel.tp)
	data := media("video/mp4", 100<<10, 12)
	if _, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(32<<10)); err != nil {
		t.Fatal(err)
	}
	// The server's spans end as its handlers return, which can be just after
	// the client has its answer: stop mediagw (it waits for them) first.
	e.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.shutdown(ctx); err != nil { // flushes the batch exporter
		t.Fatalf("shutdown: %v", err)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	got := strings.Join(recv.names, ",")
	for _, want := range []string{"upload", "X INIT", "X APPEND", "X FINALIZE", "mediagw.v1.MediaUploadService/Upload"} {
		if !strings.Contains(got, want) {
			t.Fatalf("receiver got spans %s, missing %q", got, want)
		}
	}
	if recv.svc != "mediagw-otlp-test" {
		t.Fatalf("service.name %q, want OTEL_SERVICE_NAME", recv.svc)
	}
	if want := buildinfo.Get().Version; recv.ver != want || want == "" {
		t.Fatalf("service.version %q, want the build's %q", recv.ver, want)
	}
}

// scrape fetches /metrics.
func scrape(t *testing.T, e *env) string {
	t.Helper()
	res, err := http.Get(e.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", res.StatusCode)
	}
	return string(b)
}

// metricValue sums the samples of name whose labels contain every label.
func metricValue(text, name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v); err == nil {
			sum += v
			found = true
		}
	}
	return sum, found
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	mp4 := media("video/mp4", 200<<10, 13)
	png := media("image/png", 3000, 14)
	var videoID string
	for _, u := range []struct {
		mediaType string
		data      []byte
	}{{"video/mp4", mp4}, {"image/png", png}} {
		resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: u.mediaType, TotalBytes: int64(len(u.data))}, u.data, fixed(50<<10))
		if err != nil {
			t.Fatal(err)
		}
		if videoID == "" {
			videoID = resp.GetMediaId()
		}
	}
	if _, err := watchAll(context.Background(), e, videoID); err != nil {
		t.Fatal(err)
	}
	// Refused after validation: the bytes are a PNG, declared as mp4. Only
	// the first 16 bytes are read to tell.
	_, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(png))}, png, fixed(1000))
	if codeOf(err) != "InvalidArgument" {
		t.Fatal(err)
	}
	text := scrape(t, e)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"mediagw_uploads_started_total", []string{`media_category="tweet_video"`}, 2},
		{"mediagw_uploads_started_total", []string{`media_category="tweet_image"`}, 1},
		{"mediagw_uploads_completed_total", []string{`media_category="tweet_video"`}, 1},
		{"mediagw_uploads_completed_total", []string{`media_category="tweet_image"`}, 1},
		{"mediagw_uploads_failed_total", []string{`media_category="tweet_video"`, `result="InvalidArgument"`}, 1},
		{"mediagw_upload_bytes_received_total", nil, float64(len(mp4) + len(png) + 16)},
		{"mediagw_upstream_bytes_sent_total", nil, float64(len(mp4) + len(png))},
		{"mediagw_upstream_requests_total", []string{`x_command="APPEND"`, `http_response_status_code="200"`}, 4 + 1},
		{"mediagw_upstream_requests_total", []string{`x_command="INIT"`}, 2},
		{"mediagw_upload_duration_seconds_count", []string{`result="OK"`}, 2},
		{"mediagw_uploads_in_flight", nil, 0},
		{"mediagw_upstream_segments_in_flight", nil, 0},
		{"mediagw_status_watchers", nil, 0},
		{"mediagw_status_polls_total", []string{`result="OK"`}, float64(e.x.X.Stats().Requests["status"])},
	}
	for _, c := range checks {
		got, ok := metricValue(text, c.name, c.labels...)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := metricValue(text, "process_resident_memory_bytes"); !ok {
		t.Error("/metrics lacks the process collector")
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}
}

// TestNoTokenInTelemetry runs uploads with the default token and a
// caller's token, successful and refused, and looks for either token in
// the logs, every span (attributes, events, status) and /metrics.
func TestNoTokenInTelemetry(t *testing.T) {
	t.Parallel()
	const callerToken = "caller-secret-token-7781"
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e := newEnvWith(t, xfake.Options{Tokens: []string{testToken, callerToken}}, tp)
	data := media("video/mp4", 150<<10, 15)
	start := &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}
	if _, err := e.upload(context.Background(), start, data, fixed(40<<10)); err != nil {
		t.Fatal(err)
	}
	resp, err := e.upload(withToken(context.Background(), callerToken), start, data, fixed(40<<10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watchAll(withToken(context.Background(), callerToken), e, resp.GetMediaId()); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=video/mp4", bytes.NewReader(data))
	req.Header.Set("X-Access-Token", callerToken+"-revoked")
	if code, _, _ := restUpload(t, req); code != http.StatusUnauthorized {
		t.Fatalf("revoked token: HTTP %d", code)
	}
	logs, metrics := e.stopped()
	var b strings.Builder
	b.WriteString(logs)
	b.WriteString(metrics)
	for _, s := range rec.Ended() {
		fmt.Fprintln(&b, s.Name(), s.Status().Description)
		for _, kv := range s.Attributes() {
			fmt.Fprintln(&b, kv.Key, kv.Value.Emit())
		}
		for _, ev := range s.Events() {
			fmt.Fprintln(&b, ev.Name)
			for _, kv := range ev.Attributes {
				fmt.Fprintln(&b, kv.Key, kv.Value.Emit())
			}
		}
	}
	all := b.String()
	if len(rec.Ended()) < 10 || !strings.Contains(all, "X APPEND") {
		t.Fatalf("too little telemetry to judge: %d spans", len(rec.Ended()))
	}
	for _, secret := range []string{testToken, callerToken} {
		if strings.Contains(all, secret) {
			t.Fatalf("token %q appears in logs, spans or metrics", secret)
		}
	}
}

// TestMetricsIgnoreCallerInput: no metric label takes its value from what
// an unauthenticated caller sends: neither the HTTP Host header nor a gRPC
// method name.
func TestMetricsIgnoreCallerInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	for i := range 30 {
		req, _ := http.NewRequest(http.MethodGet, e.httpURL+"/v1/media/123/status", nil)
		req.Host = fmt.Sprintf("host-%d.example", i)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}
	conn, err := grpc.NewClient(e.app.grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 30 {
		var out emptypb.Empty
		_ = conn.Invoke(context.Background(), fmt.Sprintf("/made.up.Service%d/Method%d", i, i), &emptypb.Empty{}, &out)
	}
	text := scrape(t, e)
	for _, s := range []string{"host-1.example", "made.up.Service1", "Method1"} {
		if strings.Contains(text, s) {
			t.Fatalf("/metrics holds %q, a value a caller chose", s)
		}
	}
	if !strings.Contains(text, "http_server_request_duration_seconds") {
		t.Fatal("/metrics lacks the HTTP server metrics")
	}
}
