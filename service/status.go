package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	mediagwv1 "mediagw/gen/mediagw/v1"
)

// statusHub relays X's processing state: one poller per (credential,
// media id) shared by every watcher of it, and terminal states remembered
// while the media id is valid (X answers STATUS only for media it
// processes, so the state of an image uploaded here is known only here).
type statusHub struct {
	s      *Server
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	polls     map[statusKey]*poll
	known     map[statusKey]knownState
	owners    map[string]owner // by media id
	lastSweep time.Time
}

// owner is who uploaded a media id through mediagw, and with which X
// credential.
type owner struct {
	caller    string // Caller.ID
	account   string // Auth.Account
	userToken bool   // uploaded with the caller's own X token
	until     time.Time
}

// statusKey identifies media as seen with one credential; the token itself
// is never kept in the key.
type statusKey struct {
	who     string
	mediaID string
}

type knownState struct {
	st    *mediagwv1.ProcessingStatus
	until time.Time
}

// poll is one running poller. cur is replaced, never modified, so watchers
// may read and send it without copying.
type poll struct {
	mu       sync.Mutex
	cur      *mediagwv1.ProcessingStatus
	err      error
	ended    bool
	changed  chan struct{} // closed and replaced on every change
	watchers int
	cancel   context.CancelFunc
}

func newStatusHub(s *Server) *statusHub {
	ctx, cancel := context.WithCancel(context.Background())
	return &statusHub{s: s, ctx: ctx, cancel: cancel, polls: map[statusKey]*poll{}, known: map[statusKey]knownState{},
		owners: map[string]owner{}}
}

func (h *statusHub) close() {
	h.cancel()
	h.wg.Wait()
}

func keyFor(a Auth, mediaID string) statusKey {
	if a.Token == "" {
		return statusKey{who: "account:" + a.Account, mediaID: mediaID}
	}
	sum := sha256.Sum256([]byte(a.Token))
	return statusKey{who: hex.EncodeToString(sum[:12]), mediaID: mediaID}
}

// remember records the state an upload ended in, so that watchers start
// from it and media X does not process is known to be ready, and who
// uploaded it.
func (h *statusHub) remember(c Caller, m Media) {
	ttl := h.s.cfg.StatusTTL
	if m.ExpiresAfterSecs > 0 {
		ttl = time.Duration(m.ExpiresAfterSecs) * time.Second
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.owners[m.ID] = owner{caller: c.ID, account: c.Auth.Account, userToken: c.Auth.Token != "", until: time.Now().Add(ttl)}
	h.rememberLocked(keyFor(c.Auth, m.ID), toProto(m), ttl)
}

// own records c as the uploader of mediaID until until (a replayed
// upload whose ledger entry says so).
func (h *statusHub) own(c Caller, mediaID string, until time.Time) {
	if mediaID == "" || !until.After(time.Now()) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.owners[mediaID] = owner{caller: c.ID, account: c.Auth.Account, userToken: c.Auth.Token != "", until: until}
}

// access returns the X credential c's status calls for mediaID run with.
// Media uploaded through mediagw is visible to its uploader only (to any
// other caller it is NotFound, in the words used for unknown media), with
// the account it was uploaded with. Other media is asked of X with the
// caller's own X token; with authentication configured and no token, it
// is NotFound.
func (h *statusHub) access(c Caller, mediaID string) (Auth, error) {
	h.mu.Lock()
	o, ok := h.owners[mediaID]
	h.mu.Unlock()
	if ok && time.Now().Before(o.until) {
		switch {
		case o.caller != c.ID:
			return Auth{}, unknownMedia(mediaID)
		case c.Auth.Token != "":
			return c.Auth, nil
		case o.userToken:
			return Auth{}, notFoundf("media %s was uploaded with an X user token: pass that token to see its status", mediaID)
		}
		return Auth{Account: o.account}, nil
	}
	if c.ID == "" || c.Auth.Token != "" {
		return c.Auth, nil
	}
	return Auth{}, unknownMedia(mediaID)
}

func unknownMedia(mediaID string) error {
	return notFoundf("media %s was not uploaded through mediagw by this caller, or has expired", mediaID)
}

func (h *statusHub) rememberLocked(k statusKey, st *mediagwv1.ProcessingStatus, ttl time.Duration) {
	now := time.Now()
	if now.Sub(h.lastSweep) > time.Minute {
		for key, v := range h.known {
			if now.After(v.until) {
				delete(h.known, key)
			}
		}
		for id, o := range h.owners {
			if now.After(o.until) {
				delete(h.owners, id)
			}
		}
		h.lastSweep = now
	}
	h.known[k] = knownState{st: st, until: now.Add(ttl)}
}

// lookupLocked returns what is known of k and whether it is terminal.
func (h *statusHub) lookupLocked(k statusKey) (*mediagwv1.ProcessingStatus, bool) {
	v, ok := h.known[k]
	if !ok || time.Now().After(v.until) {
		return nil, false
	}
	return v.st, terminal(v.st)
}

// get answers GetStatus: a terminal state from memory, the state a running
// poller saw last, or else one STATUS call.
func (h *statusHub) get(ctx context.Context, a Auth, mediaID string) (*mediagwv1.ProcessingStatus, error) {
	k := keyFor(a, mediaID)
	h.mu.Lock()
	if st, done := h.lookupLocked(k); done {
		h.mu.Unlock()
		return st, nil
	}
	if p := h.polls[k]; p != nil {
		p.mu.Lock()
		cur := p.cur
		p.mu.Unlock()
		if cur != nil {
			h.mu.Unlock()
			return cur, nil
		}
	}
	h.mu.Unlock()
	m, err := h.s.backend.Status(ctx, a, mediaID)
	if err != nil {
		return nil, statusError(mediaID, err)
	}
	m.ID = mediaID
	st := toProto(m)
	if terminal(st) {
		h.mu.Lock()
		h.rememberLocked(k, st, h.s.cfg.StatusTTL)
		h.mu.Unlock()
	}
	return st, nil
}

// watch sends the current state, then every change, until a terminal state.
func (h *statusHub) watch(ctx context.Context, a Auth, mediaID string, send func(*mediagwv1.ProcessingStatus) error) error {
	k := keyFor(a, mediaID)
	h.mu.Lock()
	seed, done := h.lookupLocked(k)
	if done {
		h.mu.Unlock()
		return send(seed)
	}
	p := h.polls[k]
	if p == nil {
		// The poller outlives any one watcher; its STATUS calls are traced
		// as children of the watch that started it.
		pctx := trace.ContextWithSpanContext(h.ctx, trace.SpanContextFromContext(ctx))
		pctx, cancel := context.WithTimeout(pctx, h.s.cfg.WatchTimeout)
		p = &poll{cur: seed, changed: make(chan struct{}), cancel: cancel}
		h.polls[k] = p
		h.wg.Add(1)
		go h.run(pctx, k, a, p)
	}
	p.watchers++
	h.mu.Unlock()
	defer h.leave(k, p)

	var last *mediagwv1.ProcessingStatus
	for {
		p.mu.Lock()
		cur, err, ended, changed := p.cur, p.err, p.ended, p.changed
		p.mu.Unlock()
		if cur != nil && !sameStatus(cur, last) {
			if err := send(cur); err != nil {
				return err
			}
			last = cur
		}
		if cur != nil && terminal(cur) {
			return nil
		}
		if ended {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// leave stops the poller when its last watcher goes.
func (h *statusHub) leave(k statusKey, p *poll) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p.watchers--
	if p.watchers == 0 {
		p.cancel()
		if h.polls[k] == p {
			delete(h.polls, k)
		}
	}
}

// run polls X for one media id until a terminal state, an error that
// retrying cannot mend, the watch timeout, or the last watcher leaving.
func (h *statusHub) run(ctx context.Context, k statusKey, a Auth, p *poll) {
	defer h.wg.Done()
	defer p.cancel()
	var delay time.Duration
	if p.cur != nil {
		delay = h.interval(p.cur)
	}
	failures := 0
	for {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			err := error(status.Error(codes.Unavailable, "mediagw is shutting down"))
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err = status.Errorf(codes.DeadlineExceeded, "media %s did not finish processing within %s", k.mediaID, h.s.cfg.WatchTimeout)
			}
			h.finish(k, p, err)
			return
		case <-t.C:
		}
		m, err := h.s.backend.Status(ctx, a, k.mediaID)
		h.s.tel.polls.Add(ctx, 1, metric.WithAttributes(attrResult.String(status.Code(toStatus(err)).String())))
		if err != nil {
			if ctx.Err() != nil {
				continue // reported by the select above
			}
			code := status.Code(toStatus(err))
			if code == codes.Unavailable || code == codes.ResourceExhausted {
				failures++
				delay = h.retryDelay(err, failures)
				continue
			}
			h.finish(k, p, statusError(k.mediaID, err))
			return
		}
		failures = 0
		m.ID = k.mediaID
		st := toProto(m)
		p.mu.Lock()
		if !sameStatus(st, p.cur) {
			p.cur = st
			close(p.changed)
			p.changed = make(chan struct{})
		}
		p.mu.Unlock()
		if terminal(st) {
			ttl := h.s.cfg.StatusTTL
			if m.ExpiresAfterSecs > 0 {
				ttl = time.Duration(m.ExpiresAfterSecs) * time.Second
			}
			h.mu.Lock()
			h.rememberLocked(k, st, ttl)
			h.mu.Unlock()
			h.finish(k, p, nil)
			return
		}
		delay = h.interval(st)
	}
}

func (h *statusHub) finish(k statusKey, p *poll, err error) {
	h.mu.Lock()
	if h.polls[k] == p {
		delete(h.polls, k)
	}
	h.mu.Unlock()
	p.mu.Lock()
	p.ended, p.err = true, err
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// interval is X's check_after_secs, clamped, with up to 10% jitter so that
// pollers started together spread out.
func (h *statusHub) interval(st *mediagwv1.ProcessingStatus) time.Duration {
	d := time.Duration(st.GetCheckAfterSecs()) * time.Second
	d = min(max(d, h.s.cfg.PollMin), h.s.cfg.PollMax)
	return d + rand.N(d/10+1)
}

func (h *statusHub) retryDelay(err error, failures int) time.Duration {
	var rd retryDelayError
	if errors.As(err, &rd) && rd.RetryDelay() > 0 {
		return min(rd.RetryDelay(), h.s.cfg.WatchTimeout)
	}
	d := h.s.cfg.PollMin << min(failures, 6)
	return min(d, h.s.cfg.PollMax)
}

// statusError turns X's answer for unknown or never-processed media (400
// "BadRequest: Not found", or 404) into NotFound.
func statusError(mediaID string, err error) error {
	var hs httpStatusError
	if errors.As(err, &hs) && (hs.StatusCode() == http.StatusBadRequest || hs.StatusCode() == http.StatusNotFound) {
		return notFoundf("media %s has no processing status at X (unknown, expired, or never processed)", mediaID)
	}
	return err
}

// sameStatus reports whether b says nothing new to a watcher of a: the
// same state, progress and error (check_after_secs alone is no change).
func sameStatus(a, b *mediagwv1.ProcessingStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.GetState() == b.GetState() && a.GetProgressPercent() == b.GetProgressPercent() &&
		proto.Equal(a.GetError(), b.GetError())
}

func terminal(st *mediagwv1.ProcessingStatus) bool {
	s := st.GetState()
	return s == mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED || s == mediagwv1.ProcessingState_PROCESSING_STATE_FAILED
}

// toProto converts X's answer; media without processing is ready.
func toProto(m Media) *mediagwv1.ProcessingStatus {
	st := &mediagwv1.ProcessingStatus{MediaId: m.ID}
	p := m.Processing
	if p == nil {
		st.State = mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED
		st.ProgressPercent = 100
		return st
	}
	switch {
	case p.Error != nil:
		// X has been seen reporting an error while the state is still
		// in_progress (at 99%) and never moving on to failed: the error is
		// final, whatever the state says.
		st.State = mediagwv1.ProcessingState_PROCESSING_STATE_FAILED
	case p.State == "pending":
		st.State = mediagwv1.ProcessingState_PROCESSING_STATE_PENDING
	case p.State == "succeeded":
		st.State = mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED
	case p.State == "failed":
		st.State = mediagwv1.ProcessingState_PROCESSING_STATE_FAILED
	default: // in_progress, and states X may add later
		st.State = mediagwv1.ProcessingState_PROCESSING_STATE_IN_PROGRESS
	}
	st.ProgressPercent = int32(min(max(p.ProgressPercent, 0), 100))
	st.CheckAfterSecs = int32(max(p.CheckAfterSecs, 0))
	if e := p.Error; e != nil {
		st.Error = &mediagwv1.ProcessingError{Code: int32(e.Code), Name: e.Name, Message: e.Message}
	}
	return st
}
