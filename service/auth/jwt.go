package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// jwtAlgorithms are the signatures a bearer token may carry: asymmetric
// only, so a public key can never serve as an HMAC secret, and never none.
var jwtAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// unknownKIDRefresh is how often at most a token with a key id the JWKS
// does not have fetches the JWKS again (a key rotation): a new key is
// accepted within this long of its first use.
const unknownKIDRefresh = 5 * time.Second

// unknownKIDWait bounds the JWKS fetch a token with an unknown kid makes.
const unknownKIDWait = 3 * time.Second

// jwtLeeway is the clock skew allowed on exp and nbf.
const jwtLeeway = 30 * time.Second

// JWTVerifier verifies bearer tokens with golang-jwt against a JWKS read
// by keyfunc: a file (reread when it changes, or on SIGHUP) or an https
// URL (fetched at start, refreshed hourly, and fetched again, at most
// every 30 s, when a token names a key id it does not know: key rotation).
type JWTVerifier struct {
	parser   *jwt.Parser
	issuer   string
	audience string
	log      *slog.Logger

	keys atomic.Pointer[keyfunc.Keyfunc]

	// typ, when set, is the typ every token must have (lower case,
	// without an application/ prefix).
	typ string

	// file source only
	path  string
	watch *fileWatch
}

var _ TokenVerifier = (*JWTVerifier)(nil)

// NewJWTVerifier reads the JWKS at source. ctx ends the URL's refreshes.
func NewJWTVerifier(ctx context.Context, source, issuer, audience string, log *slog.Logger) (*JWTVerifier, error) {
	v := &JWTVerifier{
		parser: jwt.NewParser(jwt.WithValidMethods(jwtAlgorithms), jwt.WithIssuer(issuer), jwt.WithAudience(audience),
			jwt.WithLeeway(jwtLeeway), jwt.WithExpirationRequired()),
		issuer: issuer, audience: audience, log: log,
	}
	u, err := url.Parse(source)
	if err == nil && (u.Scheme == "https" || u.Scheme == "http") {
		if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("--auth-jwks %s: keys must come over https (http only from a loopback host)", source)
		}
		kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{source}, keyfunc.Override{
			Client:            &http.Client{Timeout: 10 * time.Second},
			HTTPTimeout:       10 * time.Second,
			RefreshInterval:   time.Hour,
			RefreshUnknownKID: rate.NewLimiter(rate.Every(unknownKIDRefresh), 1),
			// Bounds both the wait for the limiter (a token with an
			// unknown kid soon after a fetch is refused at once: the next
			// fetch is further away than this) and the fetch it allows,
			// which must have time to reach the JWKS server.
			RateLimitWaitMax: unknownKIDWait,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(ctx context.Context, err error) {
					log.ErrorContext(ctx, "JWKS fetch failed", "auth_jwks", u, "error", err.Error())
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("--auth-jwks %s: %w", source, err)
		}
		v.keys.Store(&kf)
		return v, nil
	}
	v.path = source
	v.watch = newFileWatch(source)
	if err := v.loadFile(); err != nil {
		return nil, err
	}
	return v, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// loadFile reads the JWKS file and serves its keys from now on.
func (v *JWTVerifier) loadFile() error {
	stamp := v.watch.stamp()
	raw, err := os.ReadFile(v.path)
	if err != nil {
		return fmt.Errorf("--auth-jwks: %w", err)
	}
	kf, err := keyfunc.NewJWKSetJSON(raw)
	if err != nil {
		return fmt.Errorf("--auth-jwks %s: %w", v.path, err)
	}
	v.watch.loaded(stamp)
	v.keys.Store(&kf)
	return nil
}

// Reload rereads a JWKS file (SIGHUP); a URL refreshes by itself.
func (v *JWTVerifier) Reload() {
	if v.path == "" {
		return
	}
	if err := v.loadFile(); err != nil {
		v.log.Error("JWKS file not reloaded; verifying with the previous keys", "error", err.Error())
		return
	}
	v.log.Info("JWKS file reloaded", "auth_jwks", v.path)
}

// keyfunc returns the current keys, rereading the file first when it
// changed (looked at no more than once a second).
func (v *JWTVerifier) keyfunc() keyfunc.Keyfunc {
	if v.path != "" && v.watch.changed() {
		v.Reload()
	}
	return *v.keys.Load()
}

// SetType makes Verify require the token's typ header to be typ (compared
// without case and without an "application/" prefix, RFC 8725 §3.11);
// empty accepts any.
func (v *JWTVerifier) SetType(typ string) {
	v.typ = strings.TrimPrefix(strings.ToLower(typ), "application/")
}

// checkShape refuses what golang-jwt lets through but mediagw does not
// take: a crit header (no extension is understood, RFC 7515 §4.1.11), a
// typ other than the configured one, and exp or nbf that are not numbers.
func (v *JWTVerifier) checkShape(raw string) error {
	te := func(reason, format string, args ...any) error {
		return &TokenError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return te("MALFORMED", "the token is not a well-formed JWT")
	}
	var hdr struct {
		Crit json.RawMessage `json:"crit"`
		Typ  *string         `json:"typ"`
	}
	var claims struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
	}
	for i, dst := range []any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, dst) != nil {
			return te("MALFORMED", "the token is not a well-formed JWT")
		}
	}
	if hdr.Crit != nil {
		return te("CLAIMS", "the token's header lists crit extensions, which mediagw does not understand")
	}
	if v.typ != "" {
		got := ""
		if hdr.Typ != nil {
			got = strings.TrimPrefix(strings.ToLower(*hdr.Typ), "application/")
		}
		if got != v.typ {
			return te("TYPE", "the token's typ is %q, not %q", truncate(got, 32), v.typ)
		}
	}
	for name, c := range map[string]json.RawMessage{"exp": claims.Exp, "nbf": claims.Nbf} {
		if c != nil && !isJSONNumber(c) {
			return te("CLAIMS", "the token's %s is not a number of seconds", name)
		}
	}
	return nil
}

func isJSONNumber(b json.RawMessage) bool {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return false
	}
	_, ok := v.(json.Number)
	return ok
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Verify implements TokenVerifier: the caller is the token's sub.
func (v *JWTVerifier) Verify(ctx context.Context, raw string) (string, error) {
	var claims jwt.RegisteredClaims
	tok, err := v.parser.ParseWithClaims(raw, &claims, v.keyfunc().KeyfuncCtx(ctx))
	if err != nil {
		return "", v.refusal(tok, err)
	}
	if claims.Subject == "" {
		return "", &TokenError{Reason: "CLAIMS", Detail: "the token has no sub, which names the caller"}
	}
	return claims.Subject, nil
}

// refusal says why golang-jwt refused a token, in words that never repeat
// the token.
func (v *JWTVerifier) refusal(tok *jwt.Token, err error) error {
	te := func(reason, format string, args ...any) error {
		return &TokenError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
	if errors.Is(err, jwt.ErrTokenMalformed) {
		return te("MALFORMED", "the token is not a well-formed JWT")
	}
	if tok != nil {
		if alg, _ := tok.Header["alg"].(string); !slices.Contains(jwtAlgorithms, alg) {
			if len(alg) > 16 {
				alg = alg[:16] + "…"
			}
			return te("ALGORITHM", "alg %q is not accepted; tokens must be signed with RS256, ES256 or EdDSA", alg)
		}
	}
	switch {
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return te("UNKNOWN_KEY", "no key of the JWKS has the token's kid")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return te("UNKNOWN_KEY", "no key of the JWKS fits the token (kid or alg)")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return te("SIGNATURE", "the token's signature does not verify")
	case errors.Is(err, jwt.ErrTokenExpired):
		return te("EXPIRED", "the token has expired (exp is past, beyond %s of leeway)", jwtLeeway)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return te("NOT_YET_VALID", "the token is not valid yet (nbf is ahead, beyond %s of leeway)", jwtLeeway)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return te("ISSUER", "the token's iss is not %s", v.issuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return te("AUDIENCE", "the token's aud does not include %s", v.audience)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return te("CLAIMS", "the token lacks a required claim (exp)")
	}
	return te("CLAIMS", "the token's claims are invalid")
}
