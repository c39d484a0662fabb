package relay

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
)

// owner is who uploaded a media id through mediagw, and with which X
// credential. It is kept in the StatusStore (shared by replicas) for the
// media's lifetime, as JSON.
type owner struct {
	Caller    string `json:"caller,omitempty"`     // Caller.ID
	Account   string `json:"account,omitempty"`    // Auth.Account
	UserToken bool   `json:"user_token,omitempty"` // uploaded with the caller's own X token
}

func ownerKey(mediaID string) string { return "owner/" + mediaID }

// Own records c as the uploader of mediaID until until (an upload that
// finished, or a replayed one whose ledger entry says so).
func (h *Hub) Own(c backend.Caller, mediaID string, until time.Time) {
	if mediaID == "" || !until.After(time.Now()) {
		return
	}
	b, _ := json.Marshal(owner{Caller: c.ID, Account: c.Auth.Account, UserToken: c.Auth.Token != ""})
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := h.store.Put(ctx, ownerKey(mediaID), b, time.Until(until)); err != nil {
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
	b, err := h.store.Get(ctx, ownerKey(mediaID))
	if err != nil && !errors.Is(err, ErrNoEntry) {
		return backend.Auth{}, storeError(err)
	}
	var o owner
	if err == nil && json.Unmarshal(b, &o) == nil {
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
