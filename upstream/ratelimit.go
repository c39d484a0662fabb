package upstream

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BudgetStore shares rate-limit budgets beyond one Client: what any Client
// (a mediagw replica) learns from X's x-rate-limit-* headers or a 429 is
// what every other one sees before its next call, so that together they
// wait for the reset instead of each spending the last requests. Keys are
// a credential identity (a hash, never a secret) and an endpoint key.
// When the store fails, the Client decides that call by its own view.
type BudgetStore interface {
	// Take counts one request against key's window; ok false (nothing
	// counted) when the window is used up until reset.
	Take(ctx context.Context, key string, now time.Time) (reset time.Time, ok bool, err error)
	// Observe records X's x-rate-limit-* values (limit 0: not given).
	Observe(ctx context.Context, key string, limit, remaining int, reset time.Time) error
	// Exhaust marks key's window used up until reset (X answered 429).
	Exhaust(ctx context.Context, key string, reset time.Time) error
}

// budgetStoreTimeout bounds one BudgetStore call.
const budgetStoreTimeout = time.Second

// budget is the client's view of one X rate-limit window for one user and
// endpoint. All uploads of a Client that share credentials share it, and
// with a BudgetStore all Clients on the store.
type budget struct {
	store BudgetStore // nil: the Client's own view only
	key   string

	mu        sync.Mutex
	known     bool      // a response told us limit/remaining/reset
	limit     int       // x-rate-limit-limit
	remaining int       // requests left, decremented as requests leave
	reset     time.Time // when the window resets
}

// budgets maps credential identity + endpoint key to a budget.
type budgets struct {
	store     BudgetStore
	mu        sync.Mutex
	m         map[string]*budget
	lastSweep time.Time
}

// sweepEvery is how often get drops the budgets that know nothing: never
// told a window, or past their reset. Callers come and go (every user
// token is an identity), so without this the map would only grow; a
// dropped budget is exactly what a new one starts as.
const sweepEvery = time.Minute

func (b *budgets) get(identity, key string) *budget {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = make(map[string]*budget)
	}
	if t := now(); t.Sub(b.lastSweep) >= sweepEvery {
		b.lastSweep = t
		for k, bg := range b.m {
			bg.mu.Lock()
			stale := !bg.known || !t.Before(bg.reset)
			bg.mu.Unlock()
			if stale {
				delete(b.m, k)
			}
		}
	}
	k := identity + "|" + key
	bg := b.m[k]
	if bg == nil {
		bg = &budget{store: b.store, key: k}
		b.m[k] = bg
	}
	return bg
}

// resetMargin is added to X's reset time: x-rate-limit-reset has a one
// second resolution, so waking exactly at it may still land in the old
// window.
const resetMargin = 250 * time.Millisecond

// acquire waits until the budget allows one more request and counts it. It
// returns the reset time and false when the wait would exceed maxWait (the
// caller then fails with a RateLimitError without sending anything).
func (b *budget) acquire(ctx context.Context, maxWait time.Duration) (time.Time, bool, error) {
	for {
		t := now()
		reset, ok := b.take(ctx, t)
		if ok {
			return time.Time{}, true, nil
		}
		wait := reset.Sub(t) + resetMargin
		if wait > maxWait {
			return reset, false, nil
		}
		if err := sleep(ctx, wait); err != nil {
			return reset, true, err
		}
	}
}

// take counts one request in the shared store when there is one and it
// answers, else in the Client's own view; false with the reset when the
// window is used up.
func (b *budget) take(ctx context.Context, t time.Time) (time.Time, bool) {
	if b.store != nil {
		sctx, cancel := context.WithTimeout(ctx, budgetStoreTimeout)
		reset, ok, err := b.store.Take(sctx, b.key, t)
		cancel()
		if err == nil {
			return reset, ok
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.known && !t.Before(b.reset) {
		// The window has rolled over: we know nothing about the new one
		// until a response tells us.
		b.known = false
	}
	if !b.known || b.remaining > 0 {
		if b.known {
			b.remaining--
		}
		return time.Time{}, true
	}
	return b.reset, false
}

// observe records the x-rate-limit-* headers of a response. Responses come
// back out of order, so within one window remaining only decreases.
func (b *budget) observe(h http.Header) {
	limit, okL := headerInt(h, "x-rate-limit-limit")
	remaining, okR := headerInt(h, "x-rate-limit-remaining")
	reset := parseReset(h.Get("x-rate-limit-reset"))
	if !okR || reset.IsZero() {
		return
	}
	if b.store != nil {
		lim := 0
		if okL {
			lim = limit
		}
		ctx, cancel := context.WithTimeout(context.Background(), budgetStoreTimeout)
		_ = b.store.Observe(ctx, b.key, lim, remaining, reset)
		cancel()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.known || reset.After(b.reset):
		b.known, b.reset, b.remaining = true, reset, remaining
	case reset.Equal(b.reset):
		b.remaining = min(b.remaining, remaining)
	default:
		return // a late answer from an older window
	}
	if okL {
		b.limit = limit
	}
}

// exhaust marks the budget empty until reset (after a 429).
func (b *budget) exhaust(reset time.Time) {
	if b.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), budgetStoreTimeout)
		_ = b.store.Exhaust(ctx, b.key, reset)
		cancel()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if reset.After(b.reset) || !b.known {
		b.reset = reset
	}
	b.known, b.remaining = true, 0
}

// snapshot returns limit and reset for error reports.
func (b *budget) snapshot() (int, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit, b.reset
}

func headerInt(h http.Header, name string) (int, bool) {
	v := strings.TrimSpace(h.Get(name))
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// sleep waits for d or until ctx is done, returning the context's cause.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
