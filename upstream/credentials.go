package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dghubble/oauth1"
	"golang.org/x/oauth2"
)

// Credentials authorize requests to X on behalf of one user. Build them with
// [BearerToken], [OAuth2] or [OAuth1]. The methods are unexported: the
// package never exposes secrets, and rate-limit budgets are keyed by a hash
// of the identity, never by the secret itself.
type Credentials interface {
	// authorize returns a RoundTripper that signs each request (including
	// redirected ones) and sends it through base.
	authorize(base http.RoundTripper) http.RoundTripper
	// identity is a stable, non-secret key for this user (a hash).
	identity() string
	// secrets lists strings that must never appear in errors or logs.
	secrets() []string
	// invalidate drops a cached access token after X rejected it with 401;
	// it reports whether a retry may succeed with a fresh token.
	invalidate(rejected string) bool
}

func hashID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s|", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip implements http.RoundTripper.
func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// withHeader clones r (RoundTrippers must not modify their request) and sets
// the Authorization header.
func withHeader(r *http.Request, value string) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Header.Set("Authorization", value)
	return r2
}

// bearer is a static OAuth 2.0 user access token.
type bearer struct {
	token string
	id    string
}

// BearerToken returns credentials for a static OAuth 2.0 user access token
// (scope media.write). X rejects app-only tokens for media upload, and v1.1
// accepts only OAuth 1.0a.
func BearerToken(token string) Credentials {
	return &bearer{token: token, id: "bearer:" + hashID("bearer", token)}
}

func (b *bearer) authorize(base http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if b.token == "" {
			return nil, invalidf("the bearer token is empty")
		}
		return base.RoundTrip(withHeader(r, "Bearer "+b.token))
	})
}
func (b *bearer) identity() string       { return b.id }
func (b *bearer) secrets() []string      { return []string{b.token} }
func (b *bearer) invalidate(string) bool { return false }

// refreshing is an OAuth 2.0 user token refreshed through golang.org/x/oauth2.
type refreshing struct {
	cfg  *oauth2.Config
	id   string
	lock chan struct{} // held while refreshing: one refresh at a time
	tok  *oauth2.Token // guarded by lock
	seen []string      // every secret handed out, for scrubbing; guarded by lock
	// skew refreshes a token this long before it expires.
	skew time.Duration
}

// OAuth2 returns credentials for an OAuth 2.0 user token that is refreshed
// automatically with cfg (client id/secret, token URL) and tok's refresh
// token, through golang.org/x/oauth2. Concurrent requests share one refresh
// (single flight per credential), rotated refresh tokens are kept, and an
// access token X rejects with 401 is refreshed once before the call fails.
// The token endpoint is reached through the Client's Transport.
func OAuth2(cfg *oauth2.Config, tok *oauth2.Token) Credentials {
	r := &refreshing{cfg: cfg, lock: make(chan struct{}, 1), skew: 10 * time.Second}
	var clientID, seed string
	if cfg != nil {
		clientID = cfg.ClientID
	}
	if tok != nil {
		t := *tok
		r.tok = &t
		seed = firstString(tok.RefreshToken, tok.AccessToken)
		r.seen = append(r.seen, tok.AccessToken, tok.RefreshToken)
	}
	if cfg != nil {
		r.seen = append(r.seen, cfg.ClientSecret)
	}
	r.id = "oauth2:" + hashID("oauth2", clientID, seed)
	return r
}

// valid reports whether t can be used without refreshing, keeping a margin
// proportional to short lifetimes (tests use seconds-long tokens).
func (r *refreshing) valid(t *oauth2.Token, now time.Time) bool {
	if t == nil || t.AccessToken == "" {
		return false
	}
	if t.Expiry.IsZero() {
		return true
	}
	return now.Add(r.skew).Before(t.Expiry)
}

// token returns a valid access token, refreshing it at most once at a time.
func (r *refreshing) token(ctx context.Context, base http.RoundTripper) (string, error) {
	select {
	case r.lock <- struct{}{}:
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
	defer func() { <-r.lock }()
	if r.valid(r.tok, time.Now()) {
		return r.tok.AccessToken, nil
	}
	if r.cfg == nil || r.tok == nil || r.tok.RefreshToken == "" {
		if r.tok != nil && r.tok.AccessToken != "" {
			return r.tok.AccessToken, nil // cannot refresh: let X decide
		}
		return "", invalidf("the OAuth 2.0 credentials have neither a usable access token nor a refresh token")
	}
	rctx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: base, Timeout: 30 * time.Second})
	// An empty access token makes oauth2 refresh unconditionally.
	nt, err := r.cfg.TokenSource(rctx, &oauth2.Token{RefreshToken: r.tok.RefreshToken}).Token()
	if err != nil {
		return "", r.refreshError(err)
	}
	if nt.RefreshToken == "" {
		nt.RefreshToken = r.tok.RefreshToken
	}
	if nt.ExpiresIn > 0 && nt.Expiry.IsZero() {
		nt.Expiry = time.Now().Add(time.Duration(nt.ExpiresIn) * time.Second)
	}
	// Short-lived tokens get a proportional margin instead of the full skew.
	if life := time.Until(nt.Expiry); !nt.Expiry.IsZero() && life < 4*r.skew {
		r.skew = life / 4
	}
	r.tok = nt
	r.seen = append(r.seen, nt.AccessToken, nt.RefreshToken)
	return nt.AccessToken, nil
}

// TokenRefreshError reports a failed OAuth 2.0 token refresh. It carries only
// the token endpoint's status and error code, never its body.
type TokenRefreshError struct {
	HTTPStatus int    // token endpoint status, 0 for transport errors
	ErrorCode  string // OAuth2 "error" field, e.g. invalid_grant
	transport  error
}

// Error implements error.
func (e *TokenRefreshError) Error() string {
	if e.HTTPStatus == 0 {
		return "the OAuth 2.0 token could not be refreshed (" + transportReason(e.transport) + ")"
	}
	return fmt.Sprintf("the OAuth 2.0 token could not be refreshed: the token endpoint answered HTTP %d %s",
		e.HTTPStatus, truncate(clean(e.ErrorCode), maxEcho))
}

// StatusCode returns 401 when the token endpoint refused the refresh token
// (the user must re-authorize), 503 when it failed or was unreachable.
func (e *TokenRefreshError) StatusCode() int {
	if e.HTTPStatus >= 400 && e.HTTPStatus < 500 {
		return http.StatusUnauthorized
	}
	return http.StatusServiceUnavailable
}

// Unwrap returns the transport error, if any (context errors stay visible).
func (e *TokenRefreshError) Unwrap() error { return e.transport }

func (r *refreshing) refreshError(err error) error { return refreshError(err) }

// refreshError turns an error of golang.org/x/oauth2 into a
// TokenRefreshError holding only the endpoint's status and error code.
func refreshError(err error) *TokenRefreshError {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		out := &TokenRefreshError{ErrorCode: re.ErrorCode}
		if re.Response != nil {
			out.HTTPStatus = re.Response.StatusCode
		}
		return out
	}
	// Error says only why the endpoint could not be reached; the error
	// itself stays reachable for errors.Is (context errors) and operators.
	return &TokenRefreshError{transport: err}
}

func (r *refreshing) authorize(base http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		tok, err := r.token(req.Context(), base)
		if err != nil {
			return nil, err
		}
		return base.RoundTrip(withHeader(req, "Bearer "+tok))
	})
}

func (r *refreshing) identity() string { return r.id }

func (r *refreshing) secrets() []string {
	r.lock <- struct{}{}
	defer func() { <-r.lock }()
	return append([]string(nil), r.seen...)
}

func (r *refreshing) invalidate(rejected string) bool {
	r.lock <- struct{}{}
	defer func() { <-r.lock }()
	if r.cfg == nil || r.tok == nil || r.tok.RefreshToken == "" {
		return false
	}
	if r.tok.AccessToken == rejected {
		r.tok.AccessToken = ""
	}
	return true
}

// oauth1Creds is OAuth 1.0a user context, signed by github.com/dghubble/oauth1.
type oauth1Creds struct {
	cfg   *oauth1.Config
	token *oauth1.Token
	id    string
}

// OAuth1 returns OAuth 1.0a user-context credentials, signed with HMAC-SHA1
// by github.com/dghubble/oauth1. Query parameters and urlencoded form bodies
// are part of the signature base; multipart and JSON bodies are not (RFC 5849
// §3.4.1.3), which is what X expects for APPEND. v1.1 accepts only these.
func OAuth1(consumerKey, consumerSecret, token, tokenSecret string) Credentials {
	return &oauth1Creds{
		cfg:   oauth1.NewConfig(consumerKey, consumerSecret),
		token: oauth1.NewToken(token, tokenSecret),
		id:    "oauth1:" + hashID("oauth1", consumerKey, token),
	}
}

func (o *oauth1Creds) authorize(base http.RoundTripper) http.RoundTripper {
	if o.cfg.ConsumerKey == "" || o.token.Token == "" {
		return roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, invalidf("OAuth 1.0a needs a consumer key and a token")
		})
	}
	ctx := context.WithValue(context.Background(), oauth1.HTTPClient, &http.Client{Transport: base})
	return o.cfg.Client(ctx, o.token).Transport
}

func (o *oauth1Creds) identity() string { return o.id }
func (o *oauth1Creds) secrets() []string {
	return []string{o.cfg.ConsumerSecret, o.token.TokenSecret, o.token.Token}
}
func (o *oauth1Creds) invalidate(string) bool { return false }
