package xfake

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"time"
)

// tokenScope is the scope of the refresh tokens given in Options and of
// static bearer tokens; media.write is the one the upload endpoints need
// (FACTS §6).
const tokenScope = "media.write tweet.read tweet.write users.read offline.access"

// scopeMediaWrite is the scope the upload endpoints require of an OAuth 2.0
// user token.
const scopeMediaWrite = "media.write"

type tokenAnswer struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	AccessToken  string `json:"access_token"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// handleToken serves POST /2/oauth2/token with grant_type=refresh_token or
// grant_type=authorization_code: the client authenticates with HTTP Basic
// (or client_id alone when it has no secret), and a new access token (and a
// refresh token when the grant has offline.access) is returned.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.count("token")
	if !s.sleep(r, s.opts.Latency) {
		return
	}
	s.tokenResponse(r).write(w)
}

var (
	errBadToken = oauthError{"invalid_request", "Value passed for the token was invalid."}
	errBadCode  = oauthError{"invalid_request", "Value passed for the authorization code was invalid."}
)

func (s *Server) tokenResponse(r *http.Request) *response {
	if err := r.ParseForm(); err != nil {
		return jsonResponse(http.StatusBadRequest, ctJSON, oauthError{"invalid_request", "Malformed request body."})
	}
	if !s.clientOK(r) {
		return jsonResponse(http.StatusUnauthorized, ctJSON,
			oauthError{"unauthorized_client", "Missing valid authorization header"})
	}
	f := r.PostForm
	var (
		g  grant
		ok bool
	)
	switch f.Get("grant_type") {
	case "refresh_token":
		g, ok = s.tokens.rotate(f.Get("refresh_token"), s.opts.AccessTokenTTL, s.opts.RevokeFamilyOnReuse)
		if !ok {
			return jsonResponse(http.StatusBadRequest, ctJSON, errBadToken)
		}
	case "authorization_code":
		g, ok = s.tokens.redeem(f.Get("code"), f.Get("redirect_uri"), f.Get("code_verifier"), s.opts.AccessTokenTTL)
		if !ok {
			return jsonResponse(http.StatusBadRequest, ctJSON, errBadCode)
		}
	default:
		return jsonResponse(http.StatusBadRequest, ctJSON,
			oauthError{"invalid_request", "Value passed for the grant type was invalid."})
	}
	return jsonResponse(http.StatusOK, ctJSON, tokenAnswer{
		TokenType: "bearer", ExpiresIn: int64(s.opts.AccessTokenTTL / time.Second),
		AccessToken: g.access, Scope: g.scope, RefreshToken: g.refresh,
	})
}

func (s *Server) clientOK(r *http.Request) bool {
	id, secret := s.opts.ClientID, s.opts.ClientSecret
	if id == "" {
		return true
	}
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	if user, pass, ok := r.BasicAuth(); ok {
		return eq(user, id) && eq(pass, secret)
	}
	return secret == "" && eq(r.PostForm.Get("client_id"), id)
}

// grant is what one token call hands out.
type grant struct {
	access, refresh, scope string
}

// minted is an access token the token endpoint issued.
type minted struct {
	expiry time.Time
	scope  string
	family uint64
}

// refreshState is a refresh token the endpoint knows.
type refreshState struct {
	usable bool
	scope  string
	family uint64
}

// hasScope reports whether the space-separated scope list has want.
func hasScope(scope, want string) bool {
	return slices.Contains(strings.Fields(scope), want)
}

// mint issues an access token (and a refresh token with offline.access) in
// family; t.mu must be held.
func (t *tokens) mint(scope string, family uint64, ttl time.Duration) grant {
	g := grant{access: rand.Text(), scope: scope}
	t.minted[g.access] = minted{expiry: t.now().Add(ttl), scope: scope, family: family}
	if hasScope(scope, "offline.access") {
		g.refresh = rand.Text()
		t.refresh[g.refresh] = refreshState{usable: true, scope: scope, family: family}
	}
	return g
}

// rotate spends refresh token rt and mints a new access and refresh token in
// its family. A spent token presented again fails; with revoke, it also
// revokes every token of its family, as X may do on refresh-token reuse.
func (t *tokens) rotate(rt string, ttl time.Duration, revoke bool) (grant, bool) {
	if rt == "" {
		return grant{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st, seen := t.refresh[rt]
	switch {
	case seen && st.usable && !t.revoked[st.family]:
	case !seen && t.anyRT:
		t.families++
		st = refreshState{scope: tokenScope, family: t.families}
	default:
		if seen && !st.usable && revoke {
			t.revoked[st.family] = true
			t.reuses++
		}
		return grant{}, false
	}
	st.usable = false
	t.refresh[rt] = st
	return t.mint(st.scope, st.family, ttl), true
}

// access returns what the emulator knows of a bearer token: whether it is
// accepted now and its scope.
func (t *tokens) access(tok string) (ok bool, scope string) {
	if tok == "" {
		return false, ""
	}
	t.mu.Lock()
	m, isMinted := t.minted[tok]
	revoked := t.revoked[m.family]
	t.mu.Unlock()
	if isMinted {
		return !revoked && t.now().Before(m.expiry), m.scope
	}
	return len(t.static) == 0 || t.static[tok], tokenScope
}

// RevokeAuthorizations revokes every OAuth 2.0 token the token endpoint
// issued, as a user revoking the app's access in X's settings does: minted
// access tokens answer 401 and refresh tokens are refused from then on.
// Static tokens (Options.Tokens) are not touched.
func (s *Server) RevokeAuthorizations() {
	t := s.tokens
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := uint64(1); i <= t.families; i++ {
		t.revoked[i] = true
	}
}
