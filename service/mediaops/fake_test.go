package mediaops

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/protobuf/encoding/protojson"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/ledger"
	"github.com/mediagw/mediagw/service/ledger/boltledger"
	"github.com/mediagw/mediagw/service/relay"
)

// fakeX plays X's calls after the upload and STATUS, counting them; it
// applies what it is sent, like X, so its lookup shows the alt text.
type fakeX struct {
	mu       sync.Mutex
	noLookup bool
	state    string // STATUS state of every media: pending, succeeded, failed
	// pendingFor is how many STATUS calls answer in_progress first.
	pendingFor int
	setErr     []error
	alt        map[string]string // by media key
	sets       int
	attaches   int
	lookups    int
	statuses   int
	called     chan string // "metadata", "subtitles" after each call
}

func newFakeX() *fakeX {
	return &fakeX{state: "succeeded", alt: map[string]string{}, called: make(chan string, 16)}
}

func (f *fakeX) CheckMetadata(m backend.Metadata) error {
	if m.AltText != nil && len([]rune(*m.AltText)) > 1000 {
		return apierr.Invalidf("alt text is longer than 1000 characters")
	}
	return nil
}

func (f *fakeX) SetMetadata(_ context.Context, _ backend.Auth, id string, m backend.Metadata) error {
	f.mu.Lock()
	f.sets++
	var err error
	if len(f.setErr) > 0 {
		err, f.setErr = f.setErr[0], f.setErr[1:]
	}
	if m.AltText != nil && (err == nil || outcomeUnknown(err)) {
		f.alt["7_"+id] = *m.AltText // an unknown outcome that was applied
	}
	f.mu.Unlock()
	f.called <- "metadata"
	return err
}

func (f *fakeX) AttachSubtitles(context.Context, backend.Auth, string, string, backend.Subtitles) error {
	f.mu.Lock()
	f.attaches++
	f.mu.Unlock()
	f.called <- "subtitles"
	return nil
}

func (f *fakeX) DetachSubtitles(context.Context, backend.Auth, string, string, string) error {
	return nil
}

func (f *fakeX) LookupMedia(_ context.Context, _ backend.Auth, key string) (backend.MediaDetails, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	return backend.MediaDetails{Key: key, AltText: f.alt[key]}, nil
}

func (f *fakeX) CanLookup() bool { return !f.noLookup }

func (f *fakeX) Status(_ context.Context, _ backend.Auth, id string) (backend.Media, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses++
	p := &backend.Processing{State: f.state, CheckAfterSecs: 1}
	if f.statuses <= f.pendingFor {
		p.State = "in_progress"
	}
	if f.state == "failed" {
		p.Error = &backend.ProcessingError{Code: 1, Name: "InvalidMedia", Message: "Unsupported video format"}
	}
	return backend.Media{ID: id, Processing: p}, nil
}

func (f *fakeX) counts() (sets, attaches, lookups int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sets, f.attaches, f.lookups
}

// unknownErr is an error whose outcome is open (a 503 after the request
// was sent).
type unknownErr struct{}

func (unknownErr) Error() string        { return "X answered HTTP 503" }
func (unknownErr) OutcomeUnknown() bool { return true }
func (unknownErr) StatusCode() int      { return 503 }

type env struct {
	x   *fakeX
	l   ledger.Ledger
	hub *relay.Hub
	ops *Ops
	// metrics reads what ops counted.
	metrics *sdkmetric.ManualReader
}

func newEnv(t *testing.T, x *fakeX, dialect string) *env {
	t.Helper()
	l, err := boltledger.Open(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	hub, err := relay.New(relay.Config{Backend: x, PollMin: time.Millisecond, PollMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	ops, err := New(Config{X: x, Dialect: dialect, Relay: hub, Ledger: l, ScanEvery: time.Hour,
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ops.Close()
		hub.Close()
		_ = l.Close()
	})
	return &env{x: x, l: l, hub: hub, ops: ops, metrics: reader}
}

var alice = backend.Caller{ID: "alice", Auth: backend.Auth{Account: "main"}}

// completed stores a COMPLETED entry with actions a, as the engine leaves
// it, and hands it to Completed.
func (e *env) completed(t *testing.T, c backend.Caller, key, id, category string, processing *mediagwv1.ProcessingStatus, a *ledger.Actions) *mediagwv1.MediaActions {
	t.Helper()
	resp := &mediagwv1.UploadResponse{MediaId: id, MediaKey: "7_" + id, Processing: processing}
	b, _ := protojson.Marshal(resp)
	e.put(t, &ledger.Entry{Key: key, Phase: ledger.PhaseCompleted, MediaID: id, MediaKey: "7_" + id, Response: b,
		Start: ledger.Start{Category: category}, Actions: a, Expires: time.Now().Add(time.Hour)})
	e.hub.Own(c, id, time.Now().Add(time.Hour))
	return e.ops.Completed(context.Background(), c, key, category, resp)
}

// put stores en under its Key, or under key when given (as the engine
// stores entries under the caller's scoped key).
func (e *env) put(t *testing.T, en *ledger.Entry, key ...string) {
	t.Helper()
	ctx := context.Background()
	k := en.Key
	if len(key) > 0 {
		k = key[0]
	}
	lease, _, err := e.l.Acquire(ctx, k, false)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(ctx)
	if err := lease.Put(ctx, en); err != nil {
		t.Fatal(err)
	}
}

func (e *env) entry(t *testing.T, key string) *ledger.Entry {
	t.Helper()
	en, err := e.l.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return en
}

func plan(t *testing.T, e *env, c backend.Caller, start *mediagwv1.UploadStart, category string) *ledger.Actions {
	t.Helper()
	a, err := e.ops.Plan(context.Background(), c, start, category, true)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return a
}

func ptr[T any](v T) *T { return &v }

// waitCall waits for the fake's next call.
func waitCall(t *testing.T, x *fakeX) string {
	t.Helper()
	select {
	case c := <-x.called:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no call to X within 10s")
		return ""
	}
}

// ended is what ops counted of the actions that ended with result.
func (e *env) ended(t *testing.T, result string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.metrics.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "mediagw.media_actions.ended" {
				for _, dp := range sum.DataPoints {
					if v, _ := dp.Attributes.Value("result"); v.AsString() == result {
						n += dp.Value
					}
				}
			}
		}
	}
	return n
}
