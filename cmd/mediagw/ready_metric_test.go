package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/mediagw/mediagw/service/redisstore/redistest"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// readiness is the gauge mediagw_ready and /readyz's status, read
// together: the gauge before and after the GET, so that a change between
// the reads is seen and read again.
func readiness(t *testing.T, e *env) (gauge float64, readyz int) {
	t.Helper()
	for {
		before, ok := metricValue(scrape(t, e), "mediagw_ready")
		if !ok {
			t.Fatal("/metrics has no mediagw_ready")
		}
		res, err := http.Get(e.adminURL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if after, _ := metricValue(scrape(t, e), "mediagw_ready"); after == before {
			return before, res.StatusCode
		}
	}
}

// waitReady waits until mediagw_ready is want, and checks /readyz answers
// the same at that moment (200 for 1, 503 for 0).
func waitReady(t *testing.T, e *env, want float64, why string) {
	t.Helper()
	var g float64
	var code int
	waitFor(t, func() bool { g, code = readiness(t, e); return g == want })
	if wantCode := map[float64]int{1: http.StatusOK, 0: http.StatusServiceUnavailable}[want]; code != wantCode {
		t.Fatalf("%s: mediagw_ready %v while /readyz answers %d", why, g, code)
	}
}

// TestReadyGauge: mediagw_ready follows /readyz: 1 once serving, 0 while
// the shared state (Redis) is unreachable and 1 again when it is back, 0
// while draining.
func TestReadyGauge(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t, false)
	e := newEnv(t, xfake.Options{}, "--ledger=redis://"+rs.Addr+"/0", "--drain-timeout=20s")
	waitReady(t, e, 1, "serving")

	rs.Stop(t)
	waitReady(t, e, 0, "Redis stopped")
	rs.Restart(t)
	waitReady(t, e, 1, "Redis back")

	data := media("video/mp4", 200<<10, 81)
	stream := e.openUpload(context.Background(), data, 1000)
	waitFor(t, func() bool { return e.x.X.Stats().Requests["init"] > 0 })
	e.cancel() // SIGTERM: the upload in flight keeps the admin port up
	waitReady(t, e, 0, "draining")
	if err := stream.Send(chunkMsg(data[1000:])); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatalf("the upload in flight during the drain: %v", err)
	}
	e.waitServed("mediagw did not stop")
}
