package engine

import (
	"context"

	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/auth"
	"github.com/mediagw/mediagw/service/backend"
)

// TokenMetadataKey is the gRPC metadata key (REST header X-Access-Token)
// through which a caller passes the X user token an upload or status call
// runs with.
const TokenMetadataKey = "x-access-token"

// maxTokenBytes bounds an X access token a caller passes.
const maxTokenBytes = 4096

// CallerOf builds the Caller of a call from the identity authentication
// put into ctx and the X tokens it carries (the x-access-token metadata or
// the X-Access-Token header; where names it in errors). With
// authentication configured, a context that carries no identity is
// refused: a route the Authenticator did not guard fails closed.
func (e *Engine) CallerOf(ctx context.Context, tokens []string, where string) (backend.Caller, error) {
	id, ok := auth.IdentityFrom(ctx)
	if e.cfg.Authenticated && !ok {
		return backend.Caller{}, apierr.Unauthenticated("UNAUTHENTICATED", "the call was not authenticated")
	}
	a, err := ParseToken(tokens, where)
	return backend.Caller{ID: id.ID, Auth: a}, err
}

// StatusAccess returns the X credential a status call of c for mediaID
// runs with, or why c may not see it.
func (e *Engine) StatusAccess(c backend.Caller, mediaID string) (backend.Auth, error) {
	if err := ValidMediaID(mediaID); err != nil {
		return backend.Auth{}, err
	}
	if err := e.ready(); err != nil {
		return backend.Auth{}, err
	}
	if err := e.cfg.Policies.Authorize(&c, "", false); err != nil {
		return backend.Auth{}, err
	}
	if err := e.cfg.Policies.AllowStatus(c); err != nil {
		return backend.Auth{}, err
	}
	return e.cfg.Relay.Access(c, mediaID)
}

// ValidMediaID accepts X's numeric media ids only, so nothing else is ever
// put into an upstream URL.
func ValidMediaID(id string) error {
	if id == "" {
		return apierr.Invalidf("media_id is required")
	}
	if len(id) > 20 {
		return apierr.Invalidf("media_id %s is not an X media id", apierr.Quote(id))
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return apierr.Invalidf("media_id %s is not an X media id", apierr.Quote(id))
		}
	}
	return nil
}

// ParseToken accepts no token (the configured credentials are used) or
// exactly one well-formed token. A token that is present but empty,
// repeated or malformed is refused, never replaced by mediagw's own
// credentials: a caller that sent a token must not upload into another
// account.
func ParseToken(values []string, where string) (backend.Auth, error) {
	switch {
	case len(values) == 0:
		return backend.Auth{}, nil
	case len(values) > 1:
		return backend.Auth{}, apierr.Invalidf("the %s is given %d times; send one token", where, len(values))
	}
	t := values[0]
	if t == "" {
		return backend.Auth{}, apierr.Invalidf("the %s is empty; send a token or leave it out", where)
	}
	if len(t) > maxTokenBytes {
		return backend.Auth{}, apierr.Invalidf("the %s is longer than %d bytes", where, maxTokenBytes)
	}
	for i := 0; i < len(t); i++ {
		if t[i] < 0x21 || t[i] > 0x7e {
			return backend.Auth{}, apierr.Invalidf("the %s holds a byte that is not printable ASCII (at offset %d); X tokens are printable ASCII", where, i)
		}
	}
	return backend.Auth{Token: t}, nil
}
