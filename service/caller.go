package service

import (
	"context"
	"net/http"

	"google.golang.org/grpc/metadata"
)

// maxTokenBytes bounds an X access token a caller passes.
const maxTokenBytes = 4096

// callerFromContext reads who calls from a call's context: the identity
// the Authenticator established, and the X token of its x-access-token
// metadata (for REST routes served by the generated handlers, the
// gateway's header matcher forwards X-Access-Token there).
func (s *Server) callerFromContext(ctx context.Context) (Caller, error) {
	return s.caller(ctx, metadata.ValueFromIncomingContext(ctx, TokenMetadataKey), "x-access-token metadata")
}

// callerFromRequest reads who calls from a REST request served by the
// gateway itself: the identity the middleware established, and the X
// token of its X-Access-Token header.
func (s *Server) callerFromRequest(r *http.Request) (Caller, error) {
	return s.caller(r.Context(), r.Header.Values("X-Access-Token"), "X-Access-Token header")
}

// caller builds the Caller of a call. With authentication configured, a
// context that carries no identity is refused: a route the Authenticator
// did not guard fails closed.
func (s *Server) caller(ctx context.Context, tokens []string, where string) (Caller, error) {
	id, ok := identityFrom(ctx)
	if s.cfg.Authenticator != nil && !ok {
		return Caller{}, unauthenticated("UNAUTHENTICATED", "the call was not authenticated")
	}
	a, err := parseToken(tokens, where)
	return Caller{ID: id.ID, Auth: a}, err
}

// authFromHeader reads the X token of a REST call's X-Access-Token header.
func authFromHeader(h http.Header) (Auth, error) {
	return parseToken(h.Values("X-Access-Token"), "X-Access-Token header")
}

// parseToken accepts no token (the configured credentials are used) or
// exactly one well-formed token. A token that is present but empty,
// repeated or malformed is refused, never replaced by mediagw's own
// credentials: a caller that sent a token must not upload into another
// account.
func parseToken(values []string, where string) (Auth, error) {
	switch {
	case len(values) == 0:
		return Auth{}, nil
	case len(values) > 1:
		return Auth{}, invalidf("the %s is given %d times; send one token", where, len(values))
	}
	t := values[0]
	if t == "" {
		return Auth{}, invalidf("the %s is empty; send a token or leave it out", where)
	}
	if len(t) > maxTokenBytes {
		return Auth{}, invalidf("the %s is longer than %d bytes", where, maxTokenBytes)
	}
	for i := 0; i < len(t); i++ {
		if t[i] < 0x21 || t[i] > 0x7e {
			return Auth{}, invalidf("the %s holds a byte that is not printable ASCII (at offset %d); X tokens are printable ASCII", where, i)
		}
	}
	return Auth{Token: t}, nil
}
