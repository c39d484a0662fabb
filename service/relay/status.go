package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
)

// Hub relays X's processing state: one poller per (credential,
// media id) shared by every watcher of it, and terminal states remembered
// while the media id is valid (X answers STATUS only for media it
// processes, so the state of an image is known only from its upload).
//
// What is shared sits in the StatusStore: with a shared store (Redis) the
// poll lease makes one replica the poller of a media id, the others follow
// the changes it publishes, and one of them takes over when its lease
// expires. Within a process, one poll per key fans the changes out to its
// watchers.
type Hub struct {
	cfg    Config
	log    *slog.Logger
	tel    telemetry
	store  StatusStore
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	polls map[statusKey]*poll
	// flight joins concurrent GetStatus calls of one key into one STATUS.
	flight singleflight.Group
}

// statusKey identifies media as seen with one credential; the token itself
// is never kept in the key.
type statusKey struct {
	who     string
	mediaID string
}

// The store's keys of a statusKey: its terminal state, the latest state
// its poller saw, and its poll lease and channel.
func (k statusKey) known() string  { return "known/" + k.who + "/" + k.mediaID }
func (k statusKey) latest() string { return "latest/" + k.who + "/" + k.mediaID }

// missing is where X's "unknown media id" is kept for MissingTTL.
func (k statusKey) missing() string { return "missing/" + k.who + "/" + k.mediaID }
func (k statusKey) poll() string    { return k.who + "/" + k.mediaID }

// poll is the process's follower or poller of one key. cur is replaced,
// never modified, so watchers may read and send it without copying.
type poll struct {
	mu       sync.Mutex
	cur      *mediagwv1.ProcessingStatus
	err      error
	ended    bool
	changed  chan struct{} // closed and replaced on every change
	watchers int
	cancel   context.CancelFunc
}

// Config configures a Hub.
type Config struct {
	// Backend asks X for STATUS. Required.
	Backend interface {
		Status(ctx context.Context, auth backend.Auth, mediaID string) (backend.Media, error)
	}
	// Store keeps the terminal states and the poll leases; default the
	// in-process store (NewMemoryStatusStore). A shared one (Redis) makes
	// replicas share one poller per media id.
	Store StatusStore
	// PollMin and PollMax clamp X's check_after_secs between two STATUS
	// calls of one media id; defaults 1s and 30s.
	PollMin, PollMax time.Duration
	// WatchTimeout bounds how long one media id is polled before watchers
	// get DeadlineExceeded; default 30m.
	WatchTimeout time.Duration
	// StatusTTL is how long a terminal state is remembered when X did not
	// say how long the media id lives; default 24h.
	StatusTTL time.Duration
	// Owners keeps who uploaded each media id; default NewMemoryOwners.
	// Give the ledger's (bbolt, Redis) so that the records outlive the
	// process.
	Owners OwnerStore
	// MissingTTL is how long X's answer that it does not know a media id
	// is kept, so that asking for random ids costs X nothing; default 1m.
	MissingTTL time.Duration
	// Logger defaults to slog.Default(), MeterProvider to the otel global.
	Logger        *slog.Logger
	MeterProvider metric.MeterProvider
}

// New returns a Hub. Close it to stop its pollers.
func New(cfg Config) (*Hub, error) {
	if cfg.Backend == nil {
		return nil, errors.New("relay: Config.Backend is required")
	}
	if cfg.PollMin <= 0 {
		cfg.PollMin = time.Second
	}
	if cfg.PollMax < cfg.PollMin {
		cfg.PollMax = max(30*time.Second, cfg.PollMin)
	}
	if cfg.WatchTimeout <= 0 {
		cfg.WatchTimeout = 30 * time.Minute
	}
	if cfg.StatusTTL <= 0 {
		cfg.StatusTTL = 24 * time.Hour
	}
	if cfg.Owners == nil {
		cfg.Owners = NewMemoryOwners(0)
	}
	if cfg.MissingTTL <= 0 {
		cfg.MissingTTL = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Store == nil {
		cfg.Store = NewMemoryStatusStore(0)
	}
	tel, err := newTelemetry(cfg.MeterProvider)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{cfg: cfg, log: cfg.Logger, tel: tel, store: cfg.Store, ctx: ctx, cancel: cancel, polls: map[statusKey]*poll{}}, nil
}

// Close stops the pollers; watchers still open end with Unavailable.
func (h *Hub) Close() {
	h.cancel()
	h.wg.Wait()
}

func keyFor(a backend.Auth, mediaID string) statusKey {
	if a.Token == "" {
		return statusKey{who: "account:" + a.Account, mediaID: mediaID}
	}
	sum := sha256.Sum256([]byte(a.Token))
	return statusKey{who: hex.EncodeToString(sum[:12]), mediaID: mediaID}
}

// storeError is the caller's error when the status store cannot be read.
func storeError(err error) error {
	return apierr.Unavailable(err, "mediagw's status store is unavailable; try again shortly")
}

// Remember records who uploaded m, and the terminal state the upload
// ended in (media X does not process is SUCCEEDED from its upload on), for
// the media's lifetime. A state still to change is not kept: watchers
// start from X's.
func (h *Hub) Remember(c backend.Caller, m backend.Media) {
	ctx := context.Background()
	h.Own(c, m.ID, time.Now().Add(h.ttl(m)))
	st := ToProto(m)
	if !Terminal(st) {
		return
	}
	if err := h.putKnown(ctx, keyFor(c.Auth, m.ID), st, h.ttl(m)); err != nil {
		h.log.WarnContext(ctx, "status store: remembering a finished upload failed", "media_id", m.ID, "error", err.Error())
	}
}

// ttl is how long m's state is worth keeping: the media's lifetime.
func (h *Hub) ttl(m backend.Media) time.Duration {
	if m.ExpiresAfterSecs > 0 {
		return time.Duration(m.ExpiresAfterSecs) * time.Second
	}
	return h.cfg.StatusTTL
}

func (h *Hub) putKnown(ctx context.Context, k statusKey, st *mediagwv1.ProcessingStatus, ttl time.Duration) error {
	b, err := protojson.Marshal(st)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	return h.store.Put(ctx, k.known(), b, ttl)
}

// storeTimeout bounds one status store call.
const storeTimeout = 5 * time.Second

// read returns the state stored under key, nil when there is none.
func (h *Hub) read(ctx context.Context, key string) (*mediagwv1.ProcessingStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	b, err := h.store.Get(ctx, key)
	if errors.Is(err, ErrNoEntry) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := &mediagwv1.ProcessingStatus{}
	if err := protojson.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("the status stored under %s is unreadable: %w", key, err)
	}
	return st, nil
}

// Watch sends the current state, then every change, until a terminal state.
// The first state comes from X (or from the poller already running), never
// from what was true at upload time.
func (h *Hub) Watch(ctx context.Context, a backend.Auth, mediaID string, send func(*mediagwv1.ProcessingStatus) error) error {
	h.tel.watchers.Add(ctx, 1)
	defer h.tel.watchers.Add(ctx, -1)
	k := keyFor(a, mediaID)
	st, err := h.read(ctx, k.known())
	if err != nil {
		return storeError(err)
	}
	if st != nil {
		return send(st)
	}
	h.mu.Lock()
	p := h.polls[k]
	if p == nil {
		// The poll outlives any one watcher; its STATUS calls are traced
		// as children of the watch that started it.
		pctx := trace.ContextWithSpanContext(h.ctx, trace.SpanContextFromContext(ctx))
		pctx, cancel := context.WithTimeout(pctx, h.cfg.WatchTimeout)
		p = &poll{changed: make(chan struct{}), cancel: cancel}
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
		if cur != nil && Terminal(cur) {
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

// leave stops the poll when its last watcher goes.
func (h *Hub) leave(k statusKey, p *poll) {
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

// set makes st the poll's current state; it reports whether it changed.
func (p *poll) set(st *mediagwv1.ProcessingStatus) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sameStatus(st, p.cur) {
		return false
	}
	p.cur = st
	close(p.changed)
	p.changed = make(chan struct{})
	return true
}

func (h *Hub) finish(k statusKey, p *poll, err error) {
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

// sameStatus reports whether b says nothing new to a watcher of a: the
// same state, progress and error (check_after_secs alone is no change).
func sameStatus(a, b *mediagwv1.ProcessingStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.GetState() == b.GetState() && a.GetProgressPercent() == b.GetProgressPercent() &&
		proto.Equal(a.GetError(), b.GetError())
}

func Terminal(st *mediagwv1.ProcessingStatus) bool {
	s := st.GetState()
	return s == mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED || s == mediagwv1.ProcessingState_PROCESSING_STATE_FAILED
}

// ToProto converts X's answer; media without processing is ready.
func ToProto(m backend.Media) *mediagwv1.ProcessingStatus {
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

// hasState reports whether the poll has a state for its watchers.
func (p *poll) hasState() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur != nil
}
