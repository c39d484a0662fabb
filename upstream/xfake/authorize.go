package xfake

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// authCode is an authorization code the authorize endpoint issued.
type authCode struct {
	redirect  string
	challenge string
	method    string
	scope     string
	expiry    time.Time
	used      bool
	family    uint64
}

// handleAuthorize serves GET /i/oauth2/authorize, the page where X asks the
// user to approve an app. The emulator's test user approves at once: a
// valid request is redirected to redirect_uri with code and state. A bad
// client_id or redirect_uri is answered 400 here (it cannot be trusted to
// redirect to, RFC 6749 §4.1.2.1); other mistakes are redirected with
// error=invalid_request.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	s.count("authorize")
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !redirect.IsAbs() || (redirect.Scheme != "http" && redirect.Scheme != "https") ||
		redirect.Fragment != "" || !s.redirectOK(q.Get("redirect_uri")) {
		http.Error(w, "Something went wrong: the redirect_uri is not one registered for this app.", http.StatusBadRequest)
		return
	}
	if s.opts.ClientID != "" && subtle.ConstantTimeCompare([]byte(q.Get("client_id")), []byte(s.opts.ClientID)) != 1 {
		http.Error(w, "Something went wrong: the client_id is not known.", http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	method := q.Get("code_challenge_method")
	switch {
	case q.Get("response_type") != "code", q.Get("state") == "", strings.TrimSpace(q.Get("scope")) == "",
		q.Get("code_challenge") == "", method != "S256" && method != "plain":
		back.Set("error", "invalid_request")
	default:
		back.Set("code", s.tokens.issueCode(authCode{
			redirect: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), method: method,
			scope: strings.Join(strings.Fields(q.Get("scope")), " "),
		}, s.opts.AuthCodeTTL))
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// redirectOK reports whether uri is one of Options.RedirectURIs (any when
// empty).
func (s *Server) redirectOK(uri string) bool {
	if len(s.opts.RedirectURIs) == 0 {
		return true
	}
	for _, u := range s.opts.RedirectURIs {
		if u == uri {
			return true
		}
	}
	return false
}

// issueCode stores c and returns its code.
func (t *tokens) issueCode(c authCode, ttl time.Duration) string {
	code := rand.Text()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.families++
	c.family = t.families
	c.expiry = t.now().Add(ttl)
	t.codes[code] = c
	return code
}

// redeem spends an authorization code: it must be unused and unexpired,
// redirect_uri must be the one it was issued for, and the verifier must
// match its PKCE challenge (RFC 7636 §4.6). A code presented twice revokes
// the tokens issued for it (RFC 6749 §4.1.2).
func (t *tokens) redeem(code, redirect, verifier string, ttl time.Duration) (grant, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.codes[code]
	if !ok || code == "" {
		return grant{}, false
	}
	if c.used {
		t.revoked[c.family] = true
		return grant{}, false
	}
	c.used = true
	t.codes[code] = c
	if !t.now().Before(c.expiry) || redirect != c.redirect || !pkceOK(c.method, c.challenge, verifier) {
		return grant{}, false
	}
	return t.mint(c.scope, c.family, ttl), true
}

// pkceOK checks a code_verifier against its challenge: S256 is
// BASE64URL(SHA256(verifier)) without padding; plain is the verifier itself.
// A verifier is 43 to 128 unreserved characters (RFC 7636 §4.1).
func pkceOK(method, challenge, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, c := range verifier {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	want := verifier
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}
