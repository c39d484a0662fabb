package service

import (
	"context"
	"net/http"

	"google.golang.org/grpc/metadata"
)

// maxTokenBytes bounds an X access token a caller passes.
const maxTokenBytes = 4096

// callerFromContext reads who calls from a gRPC call's context: the X
// token of its x-access-token metadata.
func callerFromContext(ctx context.Context) (Caller, error) {
	a, err := parseToken(metadata.ValueFromIncomingContext(ctx, TokenMetadataKey), "x-access-token metadata")
	return Caller{Auth: a}, err
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
