package relay

import (
	"context"
	"errors"
	"time"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// Get answers GetStatus: a terminal state from the store, the state a
// running poller saw last (in the process or on another replica), or else
// one STATUS call.
func (h *Hub) Get(ctx context.Context, a backend.Auth, mediaID string) (*mediagwv1.ProcessingStatus, error) {
	k := keyFor(a, mediaID)
	st, err := h.read(ctx, k.known())
	if err != nil {
		return nil, storeError(err)
	}
	if st != nil {
		return st, nil
	}
	h.mu.Lock()
	if p := h.polls[k]; p != nil {
		p.mu.Lock()
		st = p.cur
		p.mu.Unlock()
	}
	h.mu.Unlock()
	if st != nil {
		return st, nil
	}
	if st, err = h.read(ctx, k.latest()); err != nil {
		return nil, storeError(err)
	}
	if st != nil {
		return st, nil
	}
	if missing, err := h.isMissing(ctx, k); err != nil {
		return nil, storeError(err)
	} else if missing {
		return nil, unknownAtX(mediaID)
	}
	// One STATUS call answers every GetStatus of the key that arrives
	// while it is under way; its answer is kept for the callers that
	// follow (a state still to change until X's check_after_secs, an
	// unknown media id for MissingTTL).
	v, err, _ := h.flight.Do(k.poll(), func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flightTimeout)
		defer cancel()
		// A flight that ended a moment ago may have kept the answer.
		if st, err := h.read(fctx, k.latest()); err == nil && st != nil {
			return st, nil
		}
		if missing, err := h.isMissing(fctx, k); err == nil && missing {
			return nil, unknownAtX(k.mediaID)
		}
		return h.ask(fctx, k, a)
	})
	if err != nil {
		return nil, err
	}
	return v.(*mediagwv1.ProcessingStatus), nil
}

// flightTimeout bounds the STATUS call that answers concurrent GetStatus
// calls (the upstream client bounds each attempt too).
const flightTimeout = 2 * time.Minute

// ask makes one STATUS call for GetStatus and keeps what it learns.
func (h *Hub) ask(ctx context.Context, k statusKey, a backend.Auth) (*mediagwv1.ProcessingStatus, error) {
	m, err := h.cfg.Backend.Status(ctx, a, k.mediaID)
	h.tel.polls.Add(ctx, 1, metric.WithAttributes(attrResult.String(grpcstatus.Code(apierr.ToStatus(err)).String())))
	if err != nil {
		err = statusError(k.mediaID, err)
		if grpcstatus.Code(apierr.ToStatus(err)) == codes.NotFound {
			h.putMissing(ctx, k)
		}
		return nil, err
	}
	m.ID = k.mediaID
	st := ToProto(m)
	if Terminal(st) {
		if err := h.putKnown(ctx, k, st, h.ttl(m)); err != nil {
			h.log.WarnContext(ctx, "status store: remembering a terminal state failed", "media_id", k.mediaID, "error", err.Error())
		}
		return st, nil
	}
	// A state still to change is worth keeping as long as X says it will
	// not change (check_after_secs, within PollMin and PollMax).
	b, _ := protojson.Marshal(st)
	d := min(max(time.Duration(st.GetCheckAfterSecs())*time.Second, h.cfg.PollMin), h.cfg.PollMax)
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := h.store.Put(sctx, k.latest(), b, d); err != nil {
		h.log.WarnContext(ctx, "status store: keeping a state failed", "media_id", k.mediaID, "error", err.Error())
	}
	return st, nil
}

// isMissing reports whether X said lately that it does not know the key's
// media.
func (h *Hub) isMissing(ctx context.Context, k statusKey) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	_, err := h.store.Get(ctx, k.missing())
	if errors.Is(err, ErrNoEntry) {
		return false, nil
	}
	return err == nil, err
}

func (h *Hub) putMissing(ctx context.Context, k statusKey) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := h.store.Put(sctx, k.missing(), []byte("1"), h.cfg.MissingTTL); err != nil {
		h.log.WarnContext(ctx, "status store: keeping an unknown media id failed", "media_id", k.mediaID, "error", err.Error())
	}
}
