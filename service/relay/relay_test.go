package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeX answers STATUS from a function and counts the calls.
type fakeX struct {
	calls  atomic.Int64
	answer func(id string) (backend.Media, error)
	gate   chan struct{} // when set, every call waits for it
	first  chan struct{} // when set, closed by the first call
	once   sync.Once
}

func (x *fakeX) Status(ctx context.Context, _ backend.Auth, id string) (backend.Media, error) {
	x.calls.Add(1)
	if x.first != nil {
		x.once.Do(func() { close(x.first) })
	}
	if x.gate != nil {
		select {
		case <-x.gate:
		case <-ctx.Done():
			return backend.Media{}, ctx.Err()
		}
	}
	return x.answer(id)
}

// xError is an error of X as the upstream adapter reports it.
type xError struct {
	code  int
	delay time.Duration
}

func (e xError) Error() string             { return fmt.Sprintf("X answered HTTP %d", e.code) }
func (e xError) StatusCode() int           { return e.code }
func (e xError) RetryDelay() time.Duration { return e.delay }

func pending(id string) (backend.Media, error) {
	return backend.Media{ID: id, Processing: &backend.Processing{State: "in_progress", CheckAfterSecs: 10, ProgressPercent: 40}}, nil
}

func newHub(t *testing.T, x *fakeX) *Hub {
	t.Helper()
	h, err := New(Config{Backend: x})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// TestGetStatusFloodCostsOneCall: a thousand GetStatus calls of one media
// still processing, at once and then one after the other, cost X one
// STATUS call: the first answers the concurrent ones, and its state is
// kept until X's check_after_secs.
func TestGetStatusFloodCostsOneCall(t *testing.T) {
	x := &fakeX{answer: pending, gate: make(chan struct{}), first: make(chan struct{})}
	h := newHub(t, x)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := h.Get(context.Background(), backend.Auth{Account: "a"}, "42")
			if err == nil && st.GetState() != mediagwv1.ProcessingState_PROCESSING_STATE_IN_PROGRESS {
				err = fmt.Errorf("state %v", st.GetState())
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	// Let the calls pile up behind the one in flight, then answer it.
	select {
	case <-x.first:
	case <-time.After(10 * time.Second):
		t.Fatal("no STATUS call reached X within 10s")
	}
	close(x.gate)
	wg.Wait()
	for range 500 {
		if _, err := h.Get(context.Background(), backend.Auth{Account: "a"}, "42"); err != nil {
			errs <- err
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := x.calls.Load(); n != 1 {
		t.Fatalf("1000 GetStatus calls cost X %d STATUS calls, want 1", n)
	}
}

// TestUnknownIDsAreRemembered: asking for a media id X does not know is
// NotFound, and asking again costs X nothing for MissingTTL.
func TestUnknownIDsAreRemembered(t *testing.T) {
	x := &fakeX{answer: func(string) (backend.Media, error) { return backend.Media{}, xError{code: 400} }}
	h := newHub(t, x)
	for range 100 {
		_, err := h.Get(context.Background(), backend.Auth{}, "7")
		if grpcstatus.Code(apierr.ToStatus(err)) != codes.NotFound {
			t.Fatalf("unknown media: %v, want NotFound", err)
		}
	}
	if n := x.calls.Load(); n != 1 {
		t.Fatalf("100 GetStatus calls of an unknown id cost X %d calls, want 1", n)
	}
}

// TestRateLimitedWatchAnswers: a watch whose first STATUS call is refused
// by X's rate limit (after the upstream client's own wait) ends at once
// with ResourceExhausted and when to try again, not silence until X's
// window resets.
func TestRateLimitedWatchAnswers(t *testing.T) {
	x := &fakeX{answer: func(string) (backend.Media, error) {
		return backend.Media{}, xError{code: 429, delay: 901 * time.Second}
	}}
	h := newHub(t, x)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := h.Watch(ctx, backend.Auth{}, "9", func(*mediagwv1.ProcessingStatus) error { return errors.New("no state was expected") })
	st := grpcstatus.Convert(err)
	if st.Code() != codes.ResourceExhausted || time.Since(start) > 5*time.Second {
		t.Fatalf("rate-limited watch: %v after %v", err, time.Since(start))
	}
	var retry time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri.GetRetryDelay().AsDuration()
		}
	}
	if retry != 901*time.Second {
		t.Fatalf("retry delay %v, want X's 901s", retry)
	}
}

// TestOwnersAreNotEvictedByOthers: one caller's uploads, however many,
// push out only its own oldest records, never another caller's.
func TestOwnersAreNotEvictedByOthers(t *testing.T) {
	h, err := New(Config{Backend: &fakeX{answer: pending}, Owners: NewMemoryOwners(100)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	victim := backend.Caller{ID: "victim", Auth: backend.Auth{Account: "a"}}
	flood := backend.Caller{ID: "flood", Auth: backend.Auth{Account: "a"}}
	h.Own(victim, "1", time.Now().Add(time.Hour))
	for i := range 10_000 {
		h.Own(flood, fmt.Sprint(1000+i), time.Now().Add(time.Hour))
	}
	if a, err := h.Access(victim, "1"); err != nil || a.Account != "a" {
		t.Fatalf("the victim's own media after 10,000 uploads of another caller: %v %v", a, err)
	}
	if _, err := h.Access(flood, "1000"); grpcstatus.Code(apierr.ToStatus(err)) != codes.NotFound {
		t.Fatalf("the flooder's oldest record past its bound: %v, want NotFound", err)
	}
	if _, err := h.Access(flood, "10999"); err != nil {
		t.Fatalf("the flooder's newest record: %v", err)
	}
	if _, err := h.Access(flood, "1"); grpcstatus.Code(apierr.ToStatus(err)) != codes.NotFound {
		t.Fatalf("another caller's media: %v, want NotFound", err)
	}
}
