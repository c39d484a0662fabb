package relay

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
)

// OwnerStore keeps who uploaded each media id, for the media's lifetime
// (ttl): the ledger's bbolt file by default, Redis when replicas share
// state, [NewMemoryOwners] without either. Records are opaque to the
// store; callerID says whose record it is, for a store that bounds each
// caller's records (so that one caller's uploads never push out
// another's).
type OwnerStore interface {
	PutOwner(ctx context.Context, mediaID, callerID string, owner []byte, ttl time.Duration) error
	// GetOwner returns the record of mediaID; false when it has none (or
	// it expired).
	GetOwner(ctx context.Context, mediaID string) ([]byte, bool, error)
}

// owner is who uploaded a media id through mediagw, and with which X
// credential, as JSON in the OwnerStore.
type owner struct {
	Caller    string `json:"caller,omitempty"`     // Caller.ID
	Account   string `json:"account,omitempty"`    // Auth.Account
	UserToken bool   `json:"user_token,omitempty"` // uploaded with the caller's own X token
}

// Own records c as the uploader of mediaID until until (an upload that
// finished, or a replayed one whose ledger entry says so).
func (h *Hub) Own(c backend.Caller, mediaID string, until time.Time) {
	if mediaID == "" || !until.After(time.Now()) {
		return
	}
	b, _ := json.Marshal(owner{Caller: c.ID, Account: c.Auth.Account, UserToken: c.Auth.Token != ""})
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := h.cfg.Owners.PutOwner(ctx, mediaID, c.ID, b, time.Until(until)); err != nil {
		h.log.WarnContext(ctx, "status store: recording a media's uploader failed", "media_id", mediaID, "error", err.Error())
	}
}

// Access returns the X credential c's status calls for mediaID run with.
// backend.Media uploaded through mediagw is visible to its uploader only (to any
// other caller it is NotFound, in the words used for unknown media), with
// the account it was uploaded with. Other media is asked of X with the
// caller's own X token; with authentication configured and no token, it
// is NotFound.
func (h *Hub) Access(c backend.Caller, mediaID string) (backend.Auth, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	b, found, err := h.cfg.Owners.GetOwner(ctx, mediaID)
	if err != nil {
		return backend.Auth{}, storeError(err)
	}
	var o owner
	if found && json.Unmarshal(b, &o) == nil {
		switch {
		case o.Caller != c.ID:
			return backend.Auth{}, unknownMedia(mediaID)
		case c.Auth.Token != "":
			return c.Auth, nil
		case o.UserToken:
			return backend.Auth{}, apierr.NotFoundf("media %s was uploaded with an X user token: pass that token to see its status", mediaID)
		}
		return backend.Auth{Account: o.Account}, nil
	}
	if c.ID == "" || c.Auth.Token != "" {
		return c.Auth, nil
	}
	return backend.Auth{}, unknownMedia(mediaID)
}

func unknownMedia(mediaID string) error {
	return apierr.NotFoundf("media %s was not uploaded through mediagw by this caller, or has expired", mediaID)
}

// DefaultOwnersPerCaller bounds the owner records NewMemoryOwners keeps of
// one caller.
const DefaultOwnersPerCaller = 100_000

// NewMemoryOwners is an OwnerStore in the process's memory, for a mediagw
// without a ledger: each caller's records are bounded (perCaller, 0:
// DefaultOwnersPerCaller; past it the caller's oldest go), so that no
// caller's uploads push out another's. Records are lost with the process.
func NewMemoryOwners(perCaller int) OwnerStore {
	if perCaller <= 0 {
		perCaller = DefaultOwnersPerCaller
	}
	return &memOwners{per: perCaller, callers: map[string]*lru.Cache[string, memValue]{}, byMedia: map[string]string{}}
}

type memOwners struct {
	per     int
	mu      sync.Mutex
	callers map[string]*lru.Cache[string, memValue]
	byMedia map[string]string // media id → caller
}

func (m *memOwners) PutOwner(_ context.Context, mediaID, callerID string, owner []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.byMedia[mediaID]; ok && prev != callerID {
		if c := m.callers[prev]; c != nil {
			c.Remove(mediaID)
		}
	}
	c := m.callers[callerID]
	if c == nil {
		c, _ = lru.NewWithEvict(m.per, func(id string, _ memValue) { delete(m.byMedia, id) })
		m.callers[callerID] = c
	}
	c.Add(mediaID, memValue{v: append([]byte(nil), owner...), until: time.Now().Add(ttl)})
	m.byMedia[mediaID] = callerID
	return nil
}

func (m *memOwners) GetOwner(_ context.Context, mediaID string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	callerID, ok := m.byMedia[mediaID]
	if !ok {
		return nil, false, nil
	}
	v, ok := m.callers[callerID].Peek(mediaID)
	if !ok || time.Now().After(v.until) {
		return nil, false, nil
	}
	return v.v, true, nil
}
