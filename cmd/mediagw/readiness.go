package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mediagw/mediagw/service/ledger/boltledger"
	"github.com/mediagw/mediagw/service/mediaops"
	"github.com/mediagw/mediagw/service/relay"
	"github.com/mediagw/mediagw/upstream"
)

// The shared state (a Redis ledger) decides readiness: while Redis does
// not answer, mediagw is NOT_SERVING (gRPC health, for the service and
// overall) and the admin port's GET /readyz answers 503, and the service refuses new
// uploads and status calls with Unavailable before anything reaches X.
// Uploads in flight go on as far as they can; what they reported
// committed is in Redis. When Redis answers again, mediagw is ready again
// by itself.

// sharedReady reports whether the shared state answers (nil without one).
func (a *app) sharedReady() error {
	if a.shared == nil {
		return nil
	}
	return a.shared.Ready()
}

// sharedHealth is told each time Redis stops or starts answering.
func (a *app) sharedHealth(err error) {
	st := healthpb.HealthCheckResponse_SERVING
	if err != nil {
		st = healthpb.HealthCheckResponse_NOT_SERVING
		a.log.Warn("shared state unreachable: not ready; new uploads and status calls get Unavailable", "error", err.Error())
	} else {
		a.log.Info("shared state answers again: ready")
	}
	a.health.SetServingStatus("", st)
	a.health.SetServingStatus("mediagw.v1.MediaUploadService", st)
}

// notReady says why mediagw does not take calls, nil while it does:
// starting, draining, or the shared state unreachable. /readyz answers
// it and the gauge mediagw_ready reports it (ready_metric.go).
func (a *app) notReady() error {
	if !a.ready.Load() {
		return errors.New("not ready")
	}
	if err := a.sharedReady(); err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	return nil
}

// readyz answers 200 while mediagw takes calls, 503 with the reason
// otherwise.
func (a *app) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := a.notReady(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if a.cfg.Emulator {
		_, _ = w.Write([]byte("ready (on the built-in X emulator, not X)\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// statusStore is the status relay's store: Redis's when shared, else the
// service's in-process default.
func (a *app) statusStore() relay.StatusStore {
	if a.shared == nil {
		return nil
	}
	return a.shared.Status()
}

// owners is where the status relay keeps who uploaded which media: Redis
// when shared, else the bbolt ledger's file, else (--ledger off) the
// relay's in-process default.
func (a *app) owners() relay.OwnerStore {
	switch l := a.ledger.(type) {
	case *boltledger.Ledger:
		return l.Owners()
	}
	if a.shared != nil {
		return a.shared.Status()
	}
	return nil
}

// mediaRecords is where mediaops keeps what it knows of each uploaded
// media (its category above all): Redis when shared, else the bbolt
// ledger's file, else (--ledger off) mediaops' in-process default.
func (a *app) mediaRecords() mediaops.Records {
	if a.shared != nil {
		return a.shared.Status()
	}
	if l, ok := a.ledger.(*boltledger.Ledger); ok {
		return boltRecords{l.Records()}
	}
	return nil
}

// boltRecords reads the ledger file's records as mediaops.Records.
type boltRecords struct{ r boltledger.Records }

func (b boltRecords) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return b.r.Put(ctx, key, value, ttl)
}

func (b boltRecords) Get(ctx context.Context, key string) ([]byte, error) {
	v, ok, err := b.r.Get(ctx, key)
	if err == nil && !ok {
		err = relay.ErrNoEntry
	}
	return v, err
}

// budgets is the rate-limit budget store: Redis's when shared, else the
// upstream client's own.
func (a *app) budgets() upstream.BudgetStore {
	if a.shared == nil {
		return nil
	}
	return a.shared.Budgets()
}
