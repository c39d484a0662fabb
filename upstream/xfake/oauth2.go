package xfake

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"time"
)

// tokenScope is the scope minted tokens carry; media.write is the one the
// upload endpoints need (FACTS §6).
const tokenScope = "media.write tweet.read tweet.write users.read offline.access"

type tokenAnswer struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	AccessToken  string `json:"access_token"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token"`
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// handleToken serves POST /2/oauth2/token with grant_type=refresh_token:
// the client authenticates with HTTP Basic (or client_id alone when it has
// no secret), the refresh token is spent, and a new access and refresh token
// are returned.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.count("token")
	if !s.sleep(r, s.opts.Latency) {
		return
	}
	s.tokenResponse(r).write(w)
}

func (s *Server) tokenResponse(r *http.Request) *response {
	if err := r.ParseForm(); err != nil {
		return jsonResponse(http.StatusBadRequest, ctJSON, oauthError{"invalid_request", "Malformed request body."})
	}
	if !s.clientOK(r) {
		return jsonResponse(http.StatusUnauthorized, ctJSON,
			oauthError{"unauthorized_client", "Missing valid authorization header"})
	}
	if r.PostForm.Get("grant_type") != "refresh_token" {
		return jsonResponse(http.StatusBadRequest, ctJSON,
			oauthError{"invalid_request", "Value passed for the grant type was invalid."})
	}
	access, refresh, ok := s.tokens.rotate(r.PostForm.Get("refresh_token"), s.opts.AccessTokenTTL)
	if !ok {
		return jsonResponse(http.StatusBadRequest, ctJSON,
			oauthError{"invalid_request", "Value passed for the token was invalid."})
	}
	return jsonResponse(http.StatusOK, ctJSON, tokenAnswer{
		TokenType: "bearer", ExpiresIn: int64(s.opts.AccessTokenTTL / time.Second),
		AccessToken: access, Scope: tokenScope, RefreshToken: refresh,
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

// rotate spends refresh token rt and mints a new access and refresh token.
func (t *tokens) rotate(rt string, ttl time.Duration) (access, refresh string, ok bool) {
	if rt == "" {
		return "", "", false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	usable, seen := t.refresh[rt]
	if !usable && (seen || !t.anyRT) {
		return "", "", false
	}
	t.refresh[rt] = false
	access, refresh = rand.Text(), rand.Text()
	t.minted[access] = t.now().Add(ttl)
	t.refresh[refresh] = true
	root := rt
	if r, ok := t.root[rt]; ok {
		root = r
	}
	t.root[access], t.root[refresh] = root, root
	return access, refresh, true
}
