package relay

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
)

// statusEvent is what a poller publishes to the followers of a key: a
// changed state, the error that ended the poll, or that it gave the poll
// lease up (so that a follower takes over at once).
type statusEvent struct {
	Status   json.RawMessage `json:"status,omitempty"`
	Code     codes.Code      `json:"code,omitempty"`
	Message  string          `json:"message,omitempty"`
	Released bool            `json:"released,omitempty"`
}

// run follows or polls one key until a terminal state, an error that
// retrying cannot mend, the watch timeout, or the last watcher leaving.
// It polls while it holds the key's poll lease, and follows the holder's
// changes otherwise, trying for the lease again as long as it follows.
func (h *Hub) run(ctx context.Context, k statusKey, a backend.Auth, p *poll) {
	defer h.wg.Done()
	defer p.cancel()
	sub, err := h.store.Subscribe(ctx, k.poll())
	if err != nil {
		h.finish(k, p, storeError(err))
		return
	}
	defer sub.Close()
	for failing := false; ; {
		lctx, cancel := context.WithTimeout(ctx, storeTimeout)
		lease, err := h.store.AcquirePoll(lctx, k.poll())
		cancel()
		var done bool
		switch {
		case err == nil:
			failing = false
			done = h.lead(ctx, k, a, p, lease, sub)
			h.release(k, lease)
		case errors.Is(err, ErrHeld):
			failing = false
			done = h.follow(ctx, k, p, sub)
		default:
			// The store is unreachable: the watch waits for it to return.
			if !failing {
				h.log.WarnContext(ctx, "status store: taking a poll lease failed; the watch waits", "media_id", k.mediaID, "error", err.Error())
			}
			failing = true
			done = h.pause(ctx, k, p, h.cfg.PollMin)
		}
		if done {
			return
		}
	}
}

// release gives the poll lease up and tells the followers.
func (h *Hub) release(k statusKey, lease PollLease) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	_ = lease.Release(ctx)
	h.publish(ctx, k, statusEvent{Released: true})
}

func (h *Hub) publish(ctx context.Context, k statusKey, ev statusEvent) {
	b, _ := json.Marshal(ev)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := h.store.Publish(ctx, k.poll(), b); err != nil {
		h.log.WarnContext(ctx, "status store: publishing a change failed", "media_id", k.mediaID, "error", err.Error())
	}
}

// pause waits d; it reports true when the poll ended meanwhile.
func (h *Hub) pause(ctx context.Context, k statusKey, p *poll, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return false
	case <-ctx.Done():
		h.end(ctx, k, p)
		return true
	}
}

// end finishes a poll whose context ended: the watch timeout, or mediagw
// shutting down (the last watcher leaving ends it too, with nobody left
// to tell).
func (h *Hub) end(ctx context.Context, k statusKey, p *poll) {
	err := error(grpcstatus.Error(codes.Unavailable, "mediagw is shutting down"))
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = grpcstatus.Errorf(codes.DeadlineExceeded, "media %s did not finish processing within %s", k.mediaID, h.cfg.WatchTimeout)
	}
	h.finish(k, p, err)
}

// lead polls X while it holds the lease; it reports true when the poll is
// over, false when the lease was lost (the caller follows then).
func (h *Hub) lead(ctx context.Context, k statusKey, a backend.Auth, p *poll, lease PollLease, sub Subscription) bool {
	var delay time.Duration // the first STATUS goes out at once
	failures := 0
	for {
		if !h.wait(ctx, delay, lease, sub) {
			if ctx.Err() != nil {
				h.end(ctx, k, p)
				return true
			}
			return false
		}
		m, err := h.cfg.Backend.Status(ctx, a, k.mediaID)
		h.tel.polls.Add(ctx, 1, metric.WithAttributes(attrResult.String(grpcstatus.Code(apierr.ToStatus(err)).String())))
		if err != nil {
			if ctx.Err() != nil {
				continue // reported by wait
			}
			code := grpcstatus.Code(apierr.ToStatus(err))
			if code == codes.ResourceExhausted && !p.hasState() {
				// X's rate limit outlasted the upstream client's wait
				// (--rate-limit-wait) before this watch had a state to
				// send: it answers now, with the last state another poller
				// kept, or else with the refusal and when to try again,
				// instead of leaving its watchers without a word until the
				// window resets.
				if st, rerr := h.read(ctx, k.latest()); rerr == nil && st != nil {
					b, _ := protojson.Marshal(st)
					if p.set(st) {
						h.publish(ctx, k, statusEvent{Status: b})
					}
				} else {
					err = apierr.ToStatus(err)
					h.finish(k, p, err)
					return true
				}
			}
			if code == codes.Unavailable || code == codes.ResourceExhausted {
				failures++
				delay = h.retryDelay(err, failures)
				continue
			}
			err = apierr.ToStatus(statusError(k.mediaID, err))
			st := grpcstatus.Convert(err)
			h.publish(ctx, k, statusEvent{Code: st.Code(), Message: st.Message()})
			h.finish(k, p, err)
			return true
		}
		failures = 0
		m.ID = k.mediaID
		st := ToProto(m)
		delay = h.interval(st)
		if Terminal(st) {
			// Stored before it is published: a follower that missed the
			// message finds it.
			if err := h.putKnown(ctx, k, st, h.ttl(m)); err != nil {
				h.log.WarnContext(ctx, "status store: remembering a terminal state failed", "media_id", k.mediaID, "error", err.Error())
			}
		}
		b, _ := protojson.Marshal(st)
		if !Terminal(st) {
			// The latest state lives as long as its poller polls: the seed
			// of a watch starting on another replica.
			sctx, cancel := context.WithTimeout(ctx, storeTimeout)
			_ = h.store.Put(sctx, k.latest(), b, delay+h.cfg.PollMax)
			cancel()
		}
		if p.set(st) {
			h.publish(ctx, k, statusEvent{Status: b})
		}
		if Terminal(st) {
			h.finish(k, p, nil)
			return true
		}
	}
}

// wait waits d while holding lease; it reports false when the lease was
// lost or ctx ended first. Messages arriving meanwhile (the poller's own)
// are drained.
func (h *Hub) wait(ctx context.Context, d time.Duration, lease PollLease, sub Subscription) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-lease.Lost():
			return false
		case <-sub.C():
		case <-ctx.Done():
			return false
		}
	}
}

// follow takes the changes another replica's poller publishes, for up to
// PollMin (then the caller tries for the lease again: a dead poller's
// lease expires). It reports true when the poll is over.
func (h *Hub) follow(ctx context.Context, k statusKey, p *poll, sub Subscription) bool {
	// Catch up with what may have been missed while not subscribed.
	if st, err := h.read(ctx, k.known()); err == nil && st != nil {
		p.set(st)
		h.finish(k, p, nil)
		return true
	}
	if st, err := h.read(ctx, k.latest()); err == nil && st != nil {
		p.set(st)
	}
	t := time.NewTimer(h.cfg.PollMin)
	defer t.Stop()
	for {
		select {
		case b := <-sub.C():
			var ev statusEvent
			if json.Unmarshal(b, &ev) != nil {
				continue
			}
			switch {
			case ev.Released:
				return false
			case ev.Code != codes.OK:
				h.finish(k, p, grpcstatus.Error(ev.Code, ev.Message))
				return true
			case len(ev.Status) > 0:
				st := &mediagwv1.ProcessingStatus{}
				if protojson.Unmarshal(ev.Status, st) != nil {
					continue
				}
				p.set(st)
				if Terminal(st) {
					h.finish(k, p, nil)
					return true
				}
			}
		case <-t.C:
			return false
		case <-ctx.Done():
			h.end(ctx, k, p)
			return true
		}
	}
}

// interval is X's check_after_secs, clamped, with up to 10% jitter so that
// pollers started together spread out.
func (h *Hub) interval(st *mediagwv1.ProcessingStatus) time.Duration {
	d := time.Duration(st.GetCheckAfterSecs()) * time.Second
	d = min(max(d, h.cfg.PollMin), h.cfg.PollMax)
	return d + rand.N(d/10+1)
}

func (h *Hub) retryDelay(err error, failures int) time.Duration {
	if d := apierr.RetryDelay(err); d > 0 {
		return min(d, h.cfg.WatchTimeout)
	}
	d := h.cfg.PollMin << min(failures, 6)
	return min(d, h.cfg.PollMax)
}

// statusError turns X's answer for unknown or never-processed media (400
// "BadRequest: Not found", or 404) into NotFound.
func statusError(mediaID string, err error) error {
	if c := apierr.XStatus(err); c == http.StatusBadRequest || c == http.StatusNotFound {
		return unknownAtX(mediaID)
	}
	return err
}

func unknownAtX(mediaID string) error {
	return apierr.NotFoundf("media %s has no processing status at X (unknown, expired, or never processed)", mediaID)
}
