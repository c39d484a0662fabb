package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// limited answers with x-rate-limit headers: remaining, and reset after the
// given delay.
func limited(status int, remaining int, after time.Duration, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-rate-limit-limit", "5")
		w.Header().Set("x-rate-limit-remaining", strconv.Itoa(remaining))
		w.Header().Set("x-rate-limit-reset", strconv.FormatInt(time.Now().Add(after).Unix(), 10))
		answer(status, body)(w, r)
	}
}

func TestBudgetHoldsUntilReset(t *testing.T) {
	t.Parallel()
	srv, n := scripted(t, limited(200, 0, 2*time.Second, okMedia), limited(200, 4, time.Hour, okMedia))
	c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.RateLimitMaxWait = 5 * time.Second })
	cr := c.cfg.Credentials
	if _, _, err := c.call(context.Background(), cr, c.d.finalizeReq("1"), callOpts{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, _, err := c.call(context.Background(), cr, c.d.finalizeReq("1"), callOpts{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("second call left after %v, before the reset", d)
	}
	if n.Load() != 2 {
		t.Fatalf("%d calls", n.Load())
	}
	// Another user's budget is separate: no wait.
	other := BearerToken("other")
	start = time.Now()
	if _, _, err := c.call(context.Background(), other, c.d.finalizeReq("1"), callOpts{}); err != nil || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("other user's call: %v after %v", err, time.Since(start))
	}
}

func TestBudgetRefusesLongWait(t *testing.T) {
	t.Parallel()
	srv, n := scripted(t, limited(200, 0, time.Hour, okMedia))
	c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.RateLimitMaxWait = time.Second })
	cr := c.cfg.Credentials
	if _, _, err := c.call(context.Background(), cr, c.d.appendReq("1", 0, []byte("x"), "b"), callOpts{}); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.call(context.Background(), cr, c.d.appendReq("1", 1, []byte("x"), "b"), callOpts{})
	var rl *RateLimitError
	if !errors.As(err, &rl) || !rl.Throttled || rl.Endpoint != "append" || rl.Limit != 5 || rl.RetryDelay() < 50*time.Minute {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, ErrRateLimited) || n.Load() != 1 {
		t.Fatalf("errors.Is=%v calls=%d", errors.Is(err, ErrRateLimited), n.Load())
	}
}

func TestTooManyRequestsWaitsForReset(t *testing.T) {
	t.Parallel()
	srv, n := scripted(t,
		limited(429, 0, 2*time.Second, `{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}`),
		limited(200, 3, time.Hour, okMedia))
	c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.RateLimitMaxWait = 5 * time.Second })
	start := time.Now()
	m, _, err := c.call(context.Background(), c.cfg.Credentials, c.d.finalizeReq("1"), callOpts{})
	if err != nil || m.ID != "42" {
		t.Fatalf("m=%+v err=%v", m, err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("retried after %v, before the reset", d)
	}
	if n.Load() != 2 {
		t.Fatalf("%d calls", n.Load())
	}
}

func TestTooManyRequestsBeyondMaxWait(t *testing.T) {
	t.Parallel()
	srv, n := scripted(t, limited(429, 0, 10*time.Minute, `{"errors":[{"code":88,"message":"Rate limit exceeded"}]}`))
	c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.RateLimitMaxWait = time.Second; cfg.Dialect = DialectV1 })
	_, _, err := c.call(context.Background(), c.cfg.Credentials, c.d.(formDialect).initReqMust(t), callOpts{})
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.Throttled || rl.Err == nil || rl.Err.Code != 88 || rl.Endpoint != "v1.1-init" {
		t.Fatalf("err = %v", err)
	}
	if d := rl.RetryDelay(); d < 9*time.Minute || d > 11*time.Minute {
		t.Fatalf("RetryDelay = %v", d)
	}
	if n.Load() != 1 {
		t.Fatalf("%d calls", n.Load())
	}
	// The budget now holds further INITs without sending them.
	_, _, err = c.call(context.Background(), c.cfg.Credentials, c.d.(formDialect).initReqMust(t), callOpts{})
	if !errors.As(err, &rl) || !rl.Throttled || n.Load() != 1 {
		t.Fatalf("second INIT: %v, %d calls", err, n.Load())
	}
}

func TestBudgetObserveOrdering(t *testing.T) {
	t.Parallel()
	var b budget
	h := func(rem int, reset int64) http.Header {
		return http.Header{"X-Rate-Limit-Remaining": {strconv.Itoa(rem)}, "X-Rate-Limit-Reset": {strconv.FormatInt(reset, 10)}, "X-Rate-Limit-Limit": {"10"}}
	}
	base := time.Now().Add(time.Hour).Unix()
	b.observe(h(5, base))
	b.observe(h(7, base)) // late answer within the window: keep the lower
	if b.remaining != 5 {
		t.Fatalf("remaining %d", b.remaining)
	}
	b.observe(h(9, base-900)) // answer from an older window: ignored
	if b.remaining != 5 {
		t.Fatalf("remaining %d after old window", b.remaining)
	}
	b.observe(h(9, base+900)) // new window
	if b.remaining != 9 || b.limit != 10 {
		t.Fatalf("remaining %d limit %d", b.remaining, b.limit)
	}
	b.observe(http.Header{"X-Rate-Limit-Remaining": {"junk"}})
	if b.remaining != 9 {
		t.Fatal("junk header changed the budget")
	}
}

// initReqMust builds a fixed INIT request for tests.
func (d formDialect) initReqMust(t *testing.T) *request {
	t.Helper()
	r, err := d.initReq(InitParams{MediaType: "video/mp4", TotalBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBudgetsForgetStaleWindows: budgets of callers that have gone are
// dropped once their window passed, so the map does not grow with every
// token ever seen; a live window is kept.
func TestBudgetsForgetStaleWindows(t *testing.T) {
	var b budgets
	live := b.get("user-live", "append")
	h := http.Header{}
	h.Set("x-rate-limit-limit", "10")
	h.Set("x-rate-limit-remaining", "3")
	h.Set("x-rate-limit-reset", strconv.FormatInt(now().Add(time.Hour).Unix(), 10))
	live.observe(h)
	for i := range 1000 {
		bg := b.get(fmt.Sprintf("user-%d", i), "append")
		past := http.Header{}
		past.Set("x-rate-limit-remaining", "0")
		past.Set("x-rate-limit-reset", strconv.FormatInt(now().Add(-time.Second).Unix(), 10))
		bg.observe(past)
	}
	b.mu.Lock()
	b.lastSweep = time.Time{} // the next get sweeps
	b.mu.Unlock()
	if got := b.get("user-live", "append"); got != live {
		t.Fatal("the live window's budget was replaced")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.m) != 1 {
		t.Fatalf("%d budgets after the sweep, want only the live one", len(b.m))
	}
}
