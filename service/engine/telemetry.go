package engine

import (
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

const instrumentationName = "github.com/mediagw/mediagw/service"

// Attribute keys of the service's spans and metrics. None carries a token
// or media bytes.
const (
	attrMediaType   = attribute.Key("media.type")
	attrCategory    = attribute.Key("media.category")
	attrTotalBytes  = attribute.Key("media.total_bytes")
	attrMediaID     = attribute.Key("x.media_id")
	attrSegmentSize = attribute.Key("upload.segment_size")
	attrSegments    = attribute.Key("upload.segments")
	attrParallelism = attribute.Key("upload.parallelism")
	attrResult      = attribute.Key("result")
	attrTransport   = attribute.Key("upload.transport")
	// attrCallerID is the caller's identity on spans; attrCaller its
	// bounded metric label (the name from the callers policy).
	attrCallerID = attribute.Key("mediagw.caller")
	attrCaller   = attribute.Key("caller")
	attrAccount  = attribute.Key("mediagw.account")
	attrSpooled  = attribute.Key("upload.spooled")
	attrReason   = attribute.Key("reason")
	attrAction   = attribute.Key("action")
)

// telemetry holds the service's tracer and instruments.
type telemetry struct {
	tracer        trace.Tracer
	started       metric.Int64Counter
	completed     metric.Int64Counter
	failed        metric.Int64Counter
	bytesReceived metric.Int64Counter
	duration      metric.Float64Histogram
	inFlight      metric.Int64UpDownCounter
	resumes       metric.Int64Counter
	replays       metric.Int64Counter
	interruptions metric.Int64Counter
	// mediaViolations counts the media rules uploads broke, by reason,
	// category and action (refused, warned).
	mediaViolations metric.Int64Counter
}

func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) (*telemetry, error) {
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
	t.started, e = m.Int64Counter("mediagw.uploads.started", metric.WithDescription("Uploads whose start message was accepted, by category."))
	add(e)
	t.completed, e = m.Int64Counter("mediagw.uploads.completed", metric.WithDescription("Uploads X finalized, by category."))
	add(e)
	t.failed, e = m.Int64Counter("mediagw.uploads.failed", metric.WithDescription("Uploads that ended with an error, by category and gRPC code."))
	add(e)
	t.bytesReceived, e = m.Int64Counter("mediagw.upload.bytes.received", metric.WithUnit("By"),
		metric.WithDescription("backend.Media bytes received from callers."))
	add(e)
	t.duration, e = m.Float64Histogram("mediagw.upload.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of Upload calls, by category and result."),
		metric.WithExplicitBucketBoundaries(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
	add(e)
	t.inFlight, e = m.Int64UpDownCounter("mediagw.uploads.in_flight", metric.WithDescription("Upload calls in progress."))
	add(e)
	t.resumes, e = m.Int64Counter("mediagw.uploads.resumed", metric.WithDescription("Uploads resumed from their committed bytes."))
	add(e)
	t.replays, e = m.Int64Counter("mediagw.uploads.replayed", metric.WithDescription("Uploads answered from the ledger with no call to X (a finished idempotency key)."))
	add(e)
	t.interruptions, e = m.Int64Counter("mediagw.uploads.interrupted", metric.WithDescription("Uploads with an idempotency key recorded as interrupted, to be resumed."))
	add(e)
	t.mediaViolations, e = m.Int64Counter("mediagw.uploads.media_violations",
		metric.WithDescription("X media rules broken by uploads, by reason, category and action (refused with --media-checks enforce, warned with warn)."))
	add(e)
	return t, err
}
