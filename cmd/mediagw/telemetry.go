package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mediagw/mediagw/service/buildinfo"
)

// telemetry is mediagw's OpenTelemetry setup: the providers every layer
// uses, the Prometheus handler for /metrics, and the shutdown that flushes
// the exporters.
type telemetry struct {
	tp       trace.TracerProvider
	mp       metric.MeterProvider
	prop     propagation.TextMapPropagator
	metrics  http.Handler
	shutdown func(context.Context) error
}

// setupTelemetry configures OpenTelemetry from the standard environment:
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_EXPORTER and
// OTEL_METRICS_EXPORTER (otlp, console or none), OTEL_EXPORTER_OTLP_* and
// OTEL_TRACES_SAMPLER. Without OTEL_TRACES_EXPORTER no span is recorded, so
// tracing costs next to nothing; metrics are always served as Prometheus
// text on /metrics.
func setupTelemetry(ctx context.Context, getenv func(string) string) (*telemetry, error) {
	build := buildinfo.Get()
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "mediagw"), attribute.String("service.version", build.Version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	t := &telemetry{
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		tp:   noop.NewTracerProvider(),
	}
	var shutdowns []func(context.Context) error
	if v := getenv("OTEL_TRACES_EXPORTER"); v != "" && v != "none" {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: %w", v, err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		t.tp = tp
		shutdowns = append(shutdowns, tp.Shutdown)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// mediagw_build_info: 1, labelled with the running build (dashboards
	// and alerts join on it to tell which version a pod runs).
	buildGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mediagw_build_info", Help: "The running build of mediagw: always 1, labelled with its version, commit and Go version.",
		ConstLabels: prometheus.Labels{"version": build.Version, "commit": build.Commit, "go_version": build.GoVersion},
	})
	buildGauge.Set(1)
	reg.MustRegister(buildGauge)
	prom, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(prom)}
	if v := getenv("OTEL_METRICS_EXPORTER"); v != "" && v != "none" {
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTEL_METRICS_EXPORTER=%s: %w", v, err)
		}
		opts = append(opts, sdkmetric.WithReader(r))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	t.mp = mp
	shutdowns = append(shutdowns, mp.Shutdown)
	t.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	t.shutdown = func(ctx context.Context) error {
		var err error
		for _, s := range shutdowns {
			err = errors.Join(err, s(ctx))
		}
		return err
	}
	return t, nil
}

// traceHandler adds the trace and span ids of the record's context to
// every log line written about a request.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(a)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
