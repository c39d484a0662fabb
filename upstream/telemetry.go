package upstream

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName names this package's tracer and meter.
const instrumentationName = "github.com/mediagw/mediagw/upstream"

// Attribute keys of the spans and metrics this package records. No key
// ever carries a credential or media bytes.
const (
	AttrCommand      = attribute.Key("x.command")
	AttrMediaID      = attribute.Key("x.media_id")
	AttrSegmentIndex = attribute.Key("x.segment_index")
	AttrBytes        = attribute.Key("x.bytes")
	AttrAttempt      = attribute.Key("x.attempt")
	AttrRetryReason  = attribute.Key("x.retry_reason")
	AttrRateLimitRem = attribute.Key("x.rate_limit.remaining")
	AttrEndpoint     = attribute.Key("x.rate_limit.endpoint")
	AttrTransaction  = attribute.Key("x.transaction_id")
	attrHTTPStatus   = attribute.Key("http.response.status_code")
	attrHTTPMethod   = attribute.Key("http.request.method")
	attrServer       = attribute.Key("server.address")
	attrErrorType    = attribute.Key("error.type")
)

// telemetry holds the tracer and the instruments of a Client. With the global no-op providers every call is nearly free.
type telemetry struct {
	tracer      trace.Tracer
	requests    metric.Int64Counter
	duration    metric.Float64Histogram
	retries     metric.Int64Counter
	waits       metric.Int64Counter
	waitTime    metric.Float64Histogram
	bytesSent   metric.Int64Counter
	segInFlight metric.Int64UpDownCounter
	spills      metric.Int64Counter
	replans     metric.Int64Counter
}

func newTelemetry(cfg *Config) (*telemetry, error) {
	tp, mp := cfg.TracerProvider, cfg.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(instrumentationName)
	t := &telemetry{tracer: tp.Tracer(instrumentationName)}
	var err, e error
	add := func(e error) { err = errors.Join(err, e) }
	t.requests, e = m.Int64Counter("mediagw.upstream.requests",
		metric.WithDescription("HTTP attempts sent to X, by command and HTTP status (0 when no answer came)."))
	add(e)
	t.duration, e = m.Float64Histogram("mediagw.upstream.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of one attempt of an X call; APPEND is the segment latency."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
	add(e)
	t.retries, e = m.Int64Counter("mediagw.upstream.retries",
		metric.WithDescription("Attempts of X calls that were retried, by command and reason."))
	add(e)
	t.waits, e = m.Int64Counter("mediagw.upstream.rate_limit.waits",
		metric.WithDescription("Requests held until an X rate-limit window reset."))
	add(e)
	t.waitTime, e = m.Float64Histogram("mediagw.upstream.rate_limit.wait.duration", metric.WithUnit("s"),
		metric.WithDescription("Time requests were held for an X rate-limit reset."))
	add(e)
	t.bytesSent, e = m.Int64Counter("mediagw.upstream.bytes.sent", metric.WithUnit("By"),
		metric.WithDescription("Media bytes X acknowledged (successful APPENDs)."))
	add(e)
	t.segInFlight, e = m.Int64UpDownCounter("mediagw.upstream.segments.in_flight",
		metric.WithDescription("Segments holding a buffer: being sent, retried or waiting for a slot."))
	add(e)
	t.spills, e = m.Int64Counter("mediagw.upstream.segments.spilled",
		metric.WithDescription("Slow segments moved from memory to disk so that another upload could have their buffer."))
	add(e)
	t.replans, e = m.Int64Counter("mediagw.upstream.segments.replans",
		metric.WithDescription("Times the remaining segments of an upload were cut smaller because X refused segments as too large (HTTP 413)."))
	add(e)
	return t, err
}

// attemptSpan is the span and timing of one HTTP attempt: each retry is a
// span of its own, named after X's command ("X APPEND").
type attemptSpan struct {
	t     *telemetry
	span  trace.Span
	start time.Time
	cmd   attribute.KeyValue
}

func (t *telemetry) startAttempt(ctx context.Context, r *request, attempt int, host string) (context.Context, attemptSpan) {
	attrs := []attribute.KeyValue{
		AttrCommand.String(r.cmd.String()),
		AttrAttempt.Int(attempt),
		attrHTTPMethod.String(r.method),
		attrServer.String(host),
	}
	if r.mediaID != "" {
		attrs = append(attrs, AttrMediaID.String(r.mediaID))
	}
	if r.segment >= 0 {
		attrs = append(attrs, AttrSegmentIndex.Int(r.segment), AttrBytes.Int64(r.segBytes))
	}
	ctx, span := t.tracer.Start(ctx, "X "+r.cmd.String(), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx, attemptSpan{t: t, span: span, start: time.Now(), cmd: attrs[0]}
}

// end records the attempt's answer (resp nil when none came) and, when
// the attempt is retried, why.
func (a attemptSpan) end(ctx context.Context, resp *response, err error, retryReason string) {
	status := 0
	if resp != nil {
		status = resp.status
		a.span.SetAttributes(attrHTTPStatus.Int(status))
		if v, ok := headerInt(resp.header, "x-rate-limit-remaining"); ok {
			a.span.SetAttributes(AttrRateLimitRem.Int(v))
		}
		if id := resp.header.Get("x-transaction-id"); id != "" && printableASCII(id, 64) {
			a.span.SetAttributes(AttrTransaction.String(id))
		}
	}
	switch {
	case err != nil:
		a.span.SetAttributes(attrErrorType.String(errorType(err)))
		a.span.SetStatus(codes.Error, errorType(err))
	case status >= 400:
		a.span.SetAttributes(attrErrorType.String(strconv.Itoa(status)))
		a.span.SetStatus(codes.Error, http.StatusText(status))
	}
	if retryReason != "" {
		a.span.SetAttributes(AttrRetryReason.String(retryReason))
		a.t.retries.Add(ctx, 1, metric.WithAttributes(a.cmd, AttrRetryReason.String(retryReason)))
	}
	a.span.End()
	a.t.requests.Add(ctx, 1, metric.WithAttributes(a.cmd, attrHTTPStatus.Int(status)))
	a.t.duration.Record(ctx, time.Since(a.start).Seconds(), metric.WithAttributes(a.cmd))
}

// waited records a hold for a rate-limit reset as a metric and as an event
// on the caller's span.
func (t *telemetry) waited(ctx context.Context, endpoint string, d time.Duration) {
	if d < time.Millisecond {
		return
	}
	attrs := metric.WithAttributes(AttrEndpoint.String(endpoint))
	t.waits.Add(ctx, 1, attrs)
	t.waitTime.Record(ctx, d.Seconds(), attrs)
	trace.SpanFromContext(ctx).AddEvent("x.rate_limit.wait", trace.WithAttributes(
		AttrEndpoint.String(endpoint), attribute.Float64("x.rate_limit.wait_seconds", d.Seconds())))
}

// errorType is a short, secret-free class of a transport error.
func errorType(err error) string {
	var st *stallError
	switch {
	case errors.As(err, &st):
		return "stalled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var tre *TokenRefreshError
	if errors.As(err, &tre) {
		return "token_refresh"
	}
	return "connection"
}

// injectTraceparent sets the W3C traceparent header of the span in ctx, and
// nothing else: tracestate and baggage stay in the process.
func injectTraceparent(ctx context.Context, h http.Header) {
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	if tp := carrier.Get("traceparent"); tp != "" {
		h.Set("traceparent", tp)
	}
}
