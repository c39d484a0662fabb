package relay

import (
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

const instrumentationName = "github.com/mediagw/mediagw/service"

var attrResult = attribute.Key("result")

type telemetry struct {
	polls    metric.Int64Counter
	watchers metric.Int64UpDownCounter
}

func newTelemetry(mp metric.MeterProvider) (telemetry, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(instrumentationName)
	var t telemetry
	var err, e error
	t.polls, e = m.Int64Counter("mediagw.status.polls", metric.WithDescription("STATUS calls made by the status pollers, by result."))
	err = errors.Join(err, e)
	t.watchers, e = m.Int64UpDownCounter("mediagw.status.watchers", metric.WithDescription("WatchStatus calls in progress."))
	err = errors.Join(err, e)
	return t, err
}
