package xfake_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/upstream/xfake"
)

const redirectURI = "http://127.0.0.1:7777/callback"

// pkceClient is golang.org/x/oauth2 configured for the emulator, and an HTTP
// client that does not follow the authorize redirect.
func pkceClient(c *client, scopes ...string) (*oauth2.Config, *http.Client) {
	cfg := &oauth2.Config{ClientID: "cid", ClientSecret: "csec", RedirectURL: redirectURI, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: c.srv.URL + "/i/oauth2/authorize", TokenURL: c.srv.URL + "/2/oauth2/token",
			AuthStyle: oauth2.AuthStyleInHeader}}
	noFollow := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return cfg, noFollow
}

// approve visits the authorize URL as the test user and returns the query of
// the redirect.
func approve(t *testing.T, hc *http.Client, authURL string) url.Values {
	t.Helper()
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), redirectURI+"?") {
		t.Fatalf("authorize redirected to %q, want %s?...", resp.Header.Get("Location"), redirectURI)
	}
	return loc.Query()
}

func TestAuthorizationCodePKCE(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := newClient(t, xfake.Options{Now: clk.Now, ClientID: "cid", ClientSecret: "csec", Tokens: []string{"static"},
		RedirectURIs: []string{redirectURI}, AccessTokenTTL: time.Hour})
	cfg, hc := pkceClient(c, "media.write", "offline.access")
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)

	verifier := oauth2.GenerateVerifier()
	q := approve(t, hc, cfg.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier)))
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		t.Fatalf("redirect query %v: want state st-1 and a code", q)
	}
	// A wrong verifier is refused, and the code is spent with it.
	if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
		t.Fatal("exchange with a wrong code_verifier succeeded")
	}
	if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("a code was exchanged twice")
	}

	q = approve(t, hc, cfg.AuthCodeURL("st-2", oauth2.S256ChallengeOption(verifier)))
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("scope") != "media.write offline.access" || tok.RefreshToken == "" || tok.ExpiresIn != 3600 {
		t.Errorf("token scope %q, refresh %t, expires_in %d", tok.Extra("scope"), tok.RefreshToken != "", tok.ExpiresIn)
	}
	body := `{"media_type":"video/mp4","total_bytes":4}`
	wantStatus(t, c.as("Bearer "+tok.AccessToken).postJSON("/2/media/upload/initialize", body), http.StatusOK)
	// The code was spent by the exchange.
	_, err = cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusBadRequest || re.ErrorCode != "invalid_request" {
		t.Errorf("second exchange: %v", err)
	}
	// A code presented twice revokes what it gave (RFC 6749 §4.1.2).
	wantStatus(t, c.as("Bearer "+tok.AccessToken).postJSON("/2/media/upload/initialize", body), http.StatusUnauthorized)

	// Codes are short-lived.
	q = approve(t, hc, cfg.AuthCodeURL("st-3", oauth2.S256ChallengeOption(verifier)))
	clk.Add(31 * time.Second)
	if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Error("a 31 s old code was exchanged")
	}
	// The redirect_uri of the exchange must be the authorize one.
	q = approve(t, hc, cfg.AuthCodeURL("st-4", oauth2.S256ChallengeOption(verifier)))
	other := *cfg
	other.RedirectURL = "http://127.0.0.1:7777/other"
	if _, err := other.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Error("exchange with another redirect_uri succeeded")
	}
	if n := c.srv.X.Stats().Requests["authorize"]; n != 4 {
		t.Errorf("authorize requests %d, want 4", n)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{ClientID: "cid", RedirectURIs: []string{redirectURI}})
	cfg, hc := pkceClient(c, "media.write")
	get := func(u string) *http.Response {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	ch := oauth2.S256ChallengeOption(oauth2.GenerateVerifier())
	bad := *cfg
	bad.RedirectURL = "http://127.0.0.1:9/elsewhere"
	if r := get(bad.AuthCodeURL("s", ch)); r.StatusCode != http.StatusBadRequest {
		t.Errorf("unregistered redirect_uri: %d, want 400", r.StatusCode)
	}
	bad = *cfg
	bad.ClientID = "other"
	if r := get(bad.AuthCodeURL("s", ch)); r.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown client_id: %d, want 400", r.StatusCode)
	}
	// Without a PKCE challenge the user is sent back with an error.
	q := approve(t, hc, cfg.AuthCodeURL("s"))
	if q.Get("error") != "invalid_request" || q.Get("code") != "" || q.Get("state") != "s" {
		t.Errorf("authorize without code_challenge redirected with %v", q)
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{ClientID: "cid", ClientSecret: "csec"})
	cfg, hc := pkceClient(c, "tweet.read", "users.read")
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	v := oauth2.GenerateVerifier()
	tok, err := cfg.Exchange(ctx, approve(t, hc, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v))).Get("code"),
		oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	// No offline.access: no refresh token.
	if tok.RefreshToken != "" || tok.Extra("scope") != "tweet.read users.read" {
		t.Errorf("scope %q, refresh token %t", tok.Extra("scope"), tok.RefreshToken != "")
	}
	// No media.write: the upload endpoints answer X's 403 Problem (v2_08).
	r := c.as("Bearer "+tok.AccessToken).postJSON("/2/media/upload/initialize", `{"media_type":"video/mp4","total_bytes":4}`)
	wantStatus(t, r, http.StatusForbidden)
	sameJSON(t, r.body, `{"title":"Forbidden","type":"about:blank","status":403,"detail":"Forbidden"}`)
	r = c.as("Bearer "+tok.AccessToken).postForm("/2/media/upload", url.Values{"command": {"INIT"},
		"media_type": {"video/mp4"}, "total_bytes": {"4"}})
	wantStatus(t, r, http.StatusForbidden)
}

// refreshWith spends rt at the token endpoint and returns the status and the
// new pair.
func refreshWith(t *testing.T, c *client, rt string) (int, string, string) {
	t.Helper()
	r := c.as("").postForm("/2/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"client_id": {"pub"}})
	if r.status != http.StatusOK {
		return r.status, "", ""
	}
	m := r.obj(t)
	return r.status, m["access_token"].(string), m["refresh_token"].(string)
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	t.Parallel()
	body := `{"media_type":"video/mp4","total_bytes":4}`
	for _, revoke := range []bool{false, true} {
		c := newClient(t, xfake.Options{ClientID: "pub", RefreshTokens: []string{"rt0", "other0"}, RevokeFamilyOnReuse: revoke})
		_, _, rt1 := refreshWith(t, c, "rt0")
		_, at2, rt2 := refreshWith(t, c, rt1)
		_, atOther, _ := refreshWith(t, c, "other0")
		if st, _, _ := refreshWith(t, c, rt1); st != http.StatusBadRequest {
			t.Fatalf("revoke=%t: spent refresh token answered %d, want 400", revoke, st)
		}
		wantAT, wantRT := http.StatusOK, http.StatusOK
		if revoke {
			wantAT, wantRT = http.StatusUnauthorized, http.StatusBadRequest
		}
		wantStatus(t, c.as("Bearer "+at2).postJSON("/2/media/upload/initialize", body), wantAT)
		if st, _, _ := refreshWith(t, c, rt2); st != wantRT {
			t.Errorf("revoke=%t: newest refresh token after reuse answered %d, want %d", revoke, st, wantRT)
		}
		// Another authorization's tokens are not touched.
		wantStatus(t, c.as("Bearer "+atOther).postJSON("/2/media/upload/initialize", body), http.StatusOK)
		if n, want := c.srv.X.Stats().RefreshReuses, map[bool]int64{false: 0, true: 1}[revoke]; n != want {
			t.Errorf("revoke=%t: refresh_reuses %d, want %d", revoke, n, want)
		}
	}
}

func TestRevokeAuthorizations(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{ClientID: "pub", RefreshTokens: []string{"rt0"}, Tokens: []string{"static"}})
	_, at, rt := refreshWith(t, c, "rt0")
	body := `{"media_type":"video/mp4","total_bytes":4}`
	wantStatus(t, c.as("Bearer "+at).postJSON("/2/media/upload/initialize", body), http.StatusOK)
	c.srv.X.RevokeAuthorizations()
	wantStatus(t, c.as("Bearer "+at).postJSON("/2/media/upload/initialize", body), http.StatusUnauthorized)
	if st, _, _ := refreshWith(t, c, rt); st != http.StatusBadRequest {
		t.Errorf("refresh after revocation: %d", st)
	}
	wantStatus(t, c.as("Bearer static").postJSON("/2/media/upload/initialize", body), http.StatusOK)
}
