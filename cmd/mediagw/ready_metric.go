package main

import (
	"context"

	"go.opentelemetry.io/otel/metric"
)

// readyGauge reports mediagw.ready (mediagw_ready on /metrics): 1 while
// the replica takes calls, 0 while it does not (starting, draining, its
// shared state unreachable). It is read from what /readyz answers at each
// collection, so the two never disagree; why it is 0 is in /readyz's
// answer and the log. No reason label: the series stays one per replica.
func (a *app) readyGauge(mp metric.MeterProvider) error {
	m := mp.Meter("mediagw")
	g, err := m.Int64ObservableGauge("mediagw.ready",
		metric.WithDescription("1 while this replica takes calls (/readyz answers 200), 0 while it does not: starting, draining, or its shared state (Redis) unreachable."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		v := int64(0)
		if a.notReady() == nil {
			v = 1
		}
		o.ObserveInt64(g, v)
		return nil
	}, g)
	return err
}
