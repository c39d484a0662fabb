package upstream

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// recordingStore is a BudgetStore that answers as told and records what
// the Client tells it: the contract between the Client and any store.
type recordingStore struct {
	mu        sync.Mutex
	takeReset time.Time // Take answers "used up until takeReset" while it is ahead
	fail      error
	observed  []int // remaining values observed
	exhausted []time.Time
	keys      map[string]bool
}

func (s *recordingStore) Take(_ context.Context, key string, now time.Time) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string]bool{}
	}
	s.keys[key] = true
	if s.fail != nil {
		return time.Time{}, true, s.fail
	}
	if now.Before(s.takeReset) {
		return s.takeReset, false, nil
	}
	return time.Time{}, true, nil
}

func (s *recordingStore) Observe(_ context.Context, _ string, _, remaining int, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observed = append(s.observed, remaining)
	return s.fail
}

func (s *recordingStore) Exhaust(_ context.Context, _ string, reset time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exhausted = append(s.exhausted, reset)
	return s.fail
}

// TestSharedBudgetHoldsCalls: a window another Client used up (the store
// says so) holds this Client's call until the reset, or refuses it
// without sending anything when the reset is too far.
func TestSharedBudgetHoldsCalls(t *testing.T) {
	t.Parallel()
	srv, n := scripted(t, limited(200, 3, time.Hour, okMedia), limited(200, 2, time.Hour, okMedia))
	store := &recordingStore{takeReset: time.Now().Add(time.Second)}
	c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.RateLimitMaxWait = 3 * time.Second; cfg.Budgets = store })
	cr := c.cfg.Credentials
	start := time.Now()
	if _, _, err := c.call(context.Background(), cr, c.d.finalizeReq("1"), callOpts{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("the call left after %v, before the shared window's reset", d)
	}
	store.mu.Lock()
	if len(store.observed) != 1 || store.observed[0] != 3 {
		t.Fatalf("the store was told remaining %v, want [3] (X's header)", store.observed)
	}
	for k := range store.keys {
		if k != cr.identity()+"|finalize" {
			t.Fatalf("store key %q, want the credential's identity and the endpoint", k)
		}
	}
	store.takeReset = time.Now().Add(time.Hour)
	store.mu.Unlock()
	_, _, err := c.call(context.Background(), cr, c.d.finalizeReq("1"), callOpts{})
	var rl *RateLimitError
	if !errors.As(err, &rl) || !rl.Throttled {
		t.Fatalf("a shared window used up for an hour: %v, want a throttled RateLimitError", err)
	}
	if n.Load() != 1 {
		t.Fatalf("X saw %d calls, want 1 (the refused call sends nothing)", n.Load())
	}
}

// TestSharedBudgetFallsBack: when the store fails, the Client decides by
// its own view, and a 429 still reaches the store.
func TestSharedBudgetFallsBack(t *testing.T) {
	t.Parallel()
	srv, n := scripted(t, limited(200, 0, time.Hour, okMedia))
	store := &recordingStore{fail: errors.New("store unreachable")}
	c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.RateLimitMaxWait = time.Second; cfg.Budgets = store })
	cr := c.cfg.Credentials
	if _, _, err := c.call(context.Background(), cr, c.d.finalizeReq("1"), callOpts{}); err != nil {
		t.Fatal(err)
	}
	// X said remaining 0 until an hour from now: the Client's own view
	// refuses the next call although the store cannot say so.
	_, _, err := c.call(context.Background(), cr, c.d.finalizeReq("1"), callOpts{})
	var rl *RateLimitError
	if !errors.As(err, &rl) || !rl.Throttled || n.Load() != 1 {
		t.Fatalf("with the store down: %v after %d calls, want the Client's own hold", err, n.Load())
	}
}

// TestSharedBudgetLearnsA429: X's 429 empties the shared window until the
// reset X gave, so that other Clients wait for it too.
func TestSharedBudgetLearnsA429(t *testing.T) {
	t.Parallel()
	srv, _ := scripted(t, limited(429, 0, time.Second, `{"title":"Too Many Requests"}`), limited(200, 4, time.Hour, okMedia))
	store := &recordingStore{}
	c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.RateLimitMaxWait = 5 * time.Second; cfg.Budgets = store })
	if _, _, err := c.call(context.Background(), c.cfg.Credentials, c.d.finalizeReq("1"), callOpts{}); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.exhausted) != 1 || time.Until(store.exhausted[0]) > 2*time.Second {
		t.Fatalf("the store was told the window is used up until %v, want one reset about a second away", store.exhausted)
	}
}
