package policy

import (
	"time"

	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"golang.org/x/time/rate"
)

// AllowStatus charges one status call (GetStatus, WatchStatus) to c's
// StatusPerSecond; past it the call is ResourceExhausted with when to try
// again. A caller the policy does not know is refused as by Authorize.
func (ps *Policies) AllowStatus(c backend.Caller) error {
	r, _, err := ps.rule(c.ID)
	if err != nil {
		return err
	}
	per := r.StatusPerSecond
	if per == 0 {
		per = DefaultStatusPerSecond
	}
	if per < 0 {
		return nil
	}
	if wait := ps.take(ps.status, c.ID, per, max(1, int(2*per))); wait > 0 {
		return apierr.OverQuota("caller:"+c.ID, wait, "caller %s is over its %g status calls per second; retry in %s",
			apierr.Quote(c.ID), per, wait.Round(time.Millisecond))
	}
	return nil
}

// AllowKey charges a new idempotency key to c's KeysPerHour; past it the
// upload is ResourceExhausted with when to try again.
func (ps *Policies) AllowKey(c backend.Caller) error {
	r, _, err := ps.rule(c.ID)
	if err != nil {
		return err
	}
	per := r.KeysPerHour
	if per == 0 {
		per = DefaultKeysPerHour
	}
	if per < 0 {
		return nil
	}
	if wait := ps.take(ps.keys, c.ID, float64(per)/3600, per); wait > 0 {
		return apierr.OverQuota("caller:"+c.ID, wait, "caller %s started its %d uploads with an idempotency key this hour; retry in %s (or upload without a key)",
			apierr.Quote(c.ID), per, wait.Round(time.Second))
	}
	return nil
}

// take takes one token of id's limiter in limits (perSecond, burst) and
// returns 0, or how long to wait for one (nothing is taken then).
func (ps *Policies) take(limits map[string]*statusLimit, id string, perSecond float64, burst int) time.Duration {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := ps.now()
	sl := limits[id]
	if sl == nil || sl.rate != perSecond {
		sl = &statusLimit{l: rate.NewLimiter(rate.Limit(perSecond), burst), rate: perSecond}
		limits[id] = sl
	}
	sl.last = now
	res := sl.l.ReserveN(now, 1)
	wait := res.DelayFrom(now)
	if wait > 0 {
		res.CancelAt(now)
	}
	return wait
}
