package xfake

import (
	"strconv"
	"sync"
	"time"
)

// limiter keeps fixed rate-limit windows per (token, endpoint key). A window
// opens at a token's first request on the key and resets Window later.
type limiter struct {
	limits map[string]RateLimit
	now    func() time.Time

	mu      sync.Mutex
	windows map[windowKey]*window
}

type windowKey struct{ token, key string }

type window struct {
	reset time.Time
	used  int
}

// quota is the outcome of one take: whether the request may proceed and the
// x-rate-limit-* values to report.
type quota struct {
	limited   bool // the key has a limit (and so headers)
	ok        bool
	limit     int
	remaining int
	reset     time.Time
}

func newLimiter(limits map[string]RateLimit, now func() time.Time) *limiter {
	return &limiter{limits: limits, now: now, windows: map[windowKey]*window{}}
}

// take counts one request by token on key.
func (l *limiter) take(token, key string) quota {
	rl := l.limits[key]
	if rl.Limit <= 0 || rl.Window <= 0 {
		return quota{ok: true}
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := windowKey{token, key}
	w := l.windows[k]
	if w == nil || !now.Before(w.reset) {
		w = &window{reset: now.Add(rl.Window)}
		l.windows[k] = w
	}
	q := quota{limited: true, limit: rl.Limit, reset: w.reset}
	if w.used >= rl.Limit {
		return q
	}
	w.used++
	q.ok, q.remaining = true, rl.Limit-w.used
	return q
}

// prune forgets windows that have reset.
func (l *limiter) prune() {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, w := range l.windows {
		if !now.Before(w.reset) {
			delete(l.windows, k)
		}
	}
}

// apply sets the x-rate-limit-* headers; reset is in epoch seconds, rounded
// up so that a client sleeping until it never wakes inside the window.
func (q quota) apply(r *response) *response {
	if !q.limited {
		return r
	}
	reset := q.reset.Unix()
	if q.reset.Nanosecond() > 0 {
		reset++
	}
	r.setHeader("x-rate-limit-limit", strconv.Itoa(q.limit))
	r.setHeader("x-rate-limit-remaining", strconv.Itoa(q.remaining))
	r.setHeader("x-rate-limit-reset", strconv.FormatInt(reset, 10))
	return r
}
