package xfake

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// authScheme is how a request authenticated.
type authScheme int

const (
	authNone authScheme = iota
	authBearer
	authOAuth1
)

// identity is who made a request: the scheme and the token that keys its
// rate-limit windows (the bearer token, or oauth_token). It is never logged.
type identity struct {
	scheme authScheme
	token  string
	scope  string // OAuth 2.0 scopes of a bearer token
	// user is who the emulator takes the caller to be, the owner of the
	// media it uploads: the bearer token or oauth_token itself, and for an
	// access token minted by the token endpoint its token family (the
	// authorization it descends from), so that a refreshed token stays the
	// same user.
	user string
}

// tokens holds the accepted bearer tokens and the OAuth 2.0 state of the
// token and authorize endpoints: minted access tokens, refresh tokens,
// authorization codes, and token families (every token descending from one
// authorization, revoked together).
type tokens struct {
	static map[string]bool // Options.Tokens; empty accepts any
	now    func() time.Time

	mu       sync.Mutex
	minted   map[string]minted       // access token -> expiry, scope, family
	refresh  map[string]refreshState // refresh token -> still usable, scope, family
	codes    map[string]authCode     // authorization code -> its request
	revoked  map[uint64]bool         // revoked families
	families uint64                  // last family number handed out
	reuses   int64                   // spent refresh tokens presented again with revocation on
	anyRT    bool                    // Options.RefreshTokens was empty
}

func newTokens(o Options) *tokens {
	t := &tokens{static: map[string]bool{}, now: o.Now, minted: map[string]minted{},
		refresh: map[string]refreshState{}, codes: map[string]authCode{}, revoked: map[uint64]bool{},
		anyRT: len(o.RefreshTokens) == 0}
	for _, tok := range o.Tokens {
		t.static[tok] = true
	}
	for _, rt := range o.RefreshTokens {
		t.families++
		t.refresh[rt] = refreshState{usable: true, scope: tokenScope, family: t.families}
	}
	return t
}

// authenticate checks the Authorization header. It returns authNone when the
// header is missing, malformed or invalid.
func (s *Server) authenticate(r *http.Request) identity {
	h := r.Header.Get("Authorization")
	scheme, rest, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "bearer":
		tok := strings.TrimSpace(rest)
		if ok, scope := s.tokens.access(tok); ok {
			return identity{scheme: authBearer, token: tok, scope: scope, user: s.tokens.userOf(tok)}
		}
		// An invalid bearer is still a bearer: v1.1 answers it 403, not 401.
		return identity{scheme: authBearer}
	case "oauth":
		p, ok := parseOAuthHeader(rest)
		if !ok || (s.opts.OAuth1 != nil && !verifyOAuth1(r, p, s.opts.OAuth1)) {
			return identity{}
		}
		return identity{scheme: authOAuth1, token: p["oauth_token"], user: "oauth1:" + p["oauth_token"]}
	}
	return identity{}
}

// userOf is the user a bearer token acts for: the token itself, or the
// family of a minted token (every token of one authorization, through its
// refreshes).
func (t *tokens) userOf(tok string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.minted[tok]; ok {
		return fmt.Sprintf("oauth2:%d", m.family)
	}
	return "bearer:" + tok
}

// oauthRequired are the parameters every OAuth 1.0a header must carry.
var oauthRequired = []string{"oauth_consumer_key", "oauth_token", "oauth_signature_method",
	"oauth_signature", "oauth_timestamp", "oauth_nonce"}

// parseOAuthHeader parses the parameters of an `OAuth k="v", ...` header
// (RFC 5849 §3.5.1) and checks the required ones are present.
func parseOAuthHeader(s string) (map[string]string, bool) {
	p := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return nil, false
		}
		k, err1 := url.PathUnescape(strings.TrimSpace(k))
		v, err2 := url.PathUnescape(v[1 : len(v)-1])
		if _, dup := p[k]; dup || err1 != nil || err2 != nil {
			return nil, false
		}
		p[k] = v
	}
	for _, k := range oauthRequired {
		if p[k] == "" {
			return nil, false
		}
	}
	if p["oauth_signature_method"] != "HMAC-SHA1" {
		return nil, false
	}
	if v, ok := p["oauth_version"]; ok && v != "1.0" {
		return nil, false
	}
	return p, true
}

// verifyOAuth1 checks keys and the HMAC-SHA1 signature (RFC 5849 §3.4). The
// signed parameters are the oauth_* ones, the query, and a form-urlencoded
// body. Timestamps and nonces are not checked.
func verifyOAuth1(r *http.Request, p map[string]string, keys *OAuth1Keys) bool {
	if p["oauth_consumer_key"] != keys.ConsumerKey || p["oauth_token"] != keys.Token {
		return false
	}
	var pairs []string
	add := func(k, v string) { pairs = append(pairs, percentEncode(k)+"="+percentEncode(v)) }
	for k, v := range p {
		if k != "oauth_signature" && k != "realm" {
			add(k, v)
		}
	}
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			add(k, v)
		}
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		if err := r.ParseForm(); err != nil {
			return false
		}
		for k, vs := range r.PostForm {
			for _, v := range vs {
				add(k, v)
			}
		}
	}
	sort.Strings(pairs)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := strings.ToLower(r.Host)
	if h, port, ok := strings.Cut(host, ":"); ok && ((scheme == "http" && port == "80") || (scheme == "https" && port == "443")) {
		host = h
	}
	base := strings.ToUpper(r.Method) + "&" + percentEncode(scheme+"://"+host+r.URL.EscapedPath()) +
		"&" + percentEncode(strings.Join(pairs, "&"))
	mac := hmac.New(sha1.New, []byte(percentEncode(keys.ConsumerSecret)+"&"+percentEncode(keys.TokenSecret)))
	mac.Write([]byte(base))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return subtle.ConstantTimeCompare([]byte(want), []byte(p["oauth_signature"])) == 1
}

// percentEncode is RFC 3986 §2.1 encoding with the unreserved set kept.
func percentEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
