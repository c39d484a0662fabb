package main

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/upstream"
)

// xAuthorizeURL is X's OAuth 2.0 authorize page (Authorization Code with
// PKCE); the built-in emulator serves the same path.
const xAuthorizeURL = "https://x.com/i/oauth2/authorize"

// accountView is one account in GET /v1/accounts: never a secret.
type accountView struct {
	Name         string    `json:"name"`
	Kind         string    `json:"kind"`             // oauth2 (refreshed), or static (a token or OAuth 1.0a keys)
	Stored       bool      `json:"stored"`           // its OAuth 2.0 tokens are in the sealed store
	Configured   bool      `json:"configured"`       // in the configuration now (a removed one keeps its stored tokens until logout)
	State        string    `json:"state,omitempty"`  // ok, expiring, refresh_failing, reauth_required
	Reason       string    `json:"reason,omitempty"` // why refresh_failing or reauth_required
	Scopes       []string  `json:"scopes,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	LastRefresh  time.Time `json:"last_refresh,omitzero"`
	ClientID     string    `json:"client_id,omitempty"`
	AuthorizeURL string    `json:"authorize_url,omitempty"`
}

// adminAccounts adds the accounts API to the admin port:
//
//	GET    /v1/accounts               every account (open, like /metrics)
//	GET    /v1/accounts/{name}        one account
//	POST   /v1/accounts/{name}/token  install a token pair: {code, code_verifier,
//	                                  redirect_uri} (exchanged here) or {refresh_token}
//	DELETE /v1/accounts/{name}/token  logout: forget the stored pair
//
// The two mutating ones require the bearer token of --admin-token-file.
func (a *app) adminAccounts(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/accounts", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"accounts": a.accountViews()})
	})
	mux.HandleFunc("GET /v1/accounts/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, v := range a.accountViews() {
			if v.Name == r.PathValue("name") {
				writeJSON(w, http.StatusOK, v)
				return
			}
		}
		adminError(w, http.StatusNotFound, fmt.Sprintf("no account %q is configured or stored", r.PathValue("name")))
	})
	mux.HandleFunc("POST /v1/accounts/{name}/token", a.adminAuth(a.installToken))
	mux.HandleFunc("DELETE /v1/accounts/{name}/token", a.adminAuth(a.logout))
}

func (a *app) accountViews() []accountView {
	var out []accountView
	seen := map[string]bool{}
	add := func(name string, c upstream.Credentials) {
		v := accountView{Name: name, Kind: "static", Configured: true}
		switch c := c.(type) {
		case *upstream.Account:
			h := c.Health()
			v.Kind, v.Stored, v.State, v.Reason, v.Scopes = "oauth2", true, string(h.State), h.Reason, h.Scopes
			v.Expiry, v.LastRefresh = h.Expiry, h.LastRefresh
		case oauth2Spec:
			v.Kind = "oauth2"
		}
		if _, spec, ok := a.tokens.storedSpec(name); ok {
			v.ClientID, v.AuthorizeURL = spec.cfg.ClientID, a.authorizeURL()
		}
		seen[name] = true
		out = append(out, v)
	}
	if c := a.defaultCreds; c != nil {
		add(defaultAccountName, c)
	}
	named := a.accountSet.snapshot()
	for _, n := range sortedKeys(named) {
		add(n, named[n])
	}
	if a.tokens != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		names, _ := a.tokens.store.Accounts(ctx)
		for _, n := range names {
			if !seen[n] {
				out = append(out, accountView{Name: n, Kind: "oauth2", Stored: true})
			}
		}
	}
	return out
}

// storedSpec is the stored account of name and its configuration.
func (ts *tokenStore) storedSpec(name string) (*upstream.Account, oauth2Spec, bool) {
	if ts == nil {
		return nil, oauth2Spec{}, false
	}
	return ts.stored(name)
}

// authorizeURL is where accounts login sends the user: X's page when
// mediagw talks to X's API host, else the same path on --x-api-url (the
// emulator, or whatever stands in for X there); --x-authorize-url wins.
func (a *app) authorizeURL() string {
	if a.cfg.Secrets.AuthorizeURL != "" {
		return a.cfg.Secrets.AuthorizeURL
	}
	if u, err := url.Parse(a.xURL); err == nil && (u.Host == "api.x.com" || u.Host == "api.twitter.com") {
		return xAuthorizeURL
	}
	return strings.TrimRight(a.xURL, "/") + "/i/oauth2/authorize"
}

// adminTLS wraps the admin listener in TLS with --admin-tls: the server
// certificate of --tls-cert, and client certificates of --tls-client-ca
// verified when given (reads need none; see adminAuth).
func (a *app) adminTLS() error {
	if !a.cfg.Secrets.AdminTLS {
		return nil
	}
	if a.tls == nil {
		return errors.New("--admin-tls needs --tls-cert and --tls-key")
	}
	c := a.tls.Config("http/1.1")
	get := c.GetConfigForClient
	c.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		cc, err := get(h)
		if err == nil && cc.ClientCAs != nil {
			cc.ClientAuth = tls.VerifyClientCertIfGiven
		}
		return cc, err
	}
	a.adminLis = tls.NewListener(a.adminLis, c)
	return nil
}

// adminAuth lets a mutating request through with a client certificate
// verified against --tls-client-ca (--admin-tls), or with the bearer token
// of --admin-token-file, read at every request so that it can be rotated
// without a restart.
func (a *app) adminAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			h(w, r)
			return
		}
		path := a.cfg.Secrets.AdminTokenFile
		if path == "" {
			adminError(w, http.StatusForbidden, "the admin API's mutating endpoints need a client certificate (--admin-tls with --tls-client-ca) or a bearer token (--admin-token-file)")
			return
		}
		want, err := os.ReadFile(path)
		tok := strings.TrimSpace(string(want))
		if err != nil || len(tok) < 16 {
			a.log.Error("the --admin-token-file cannot be read or holds fewer than 16 characters", "path", path)
			adminError(w, http.StatusServiceUnavailable, "the admin token file cannot be used; see mediagw's log")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(tok)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mediagw-admin"`)
			adminError(w, http.StatusUnauthorized, "a valid admin bearer token is required (the one in --admin-token-file)")
			return
		}
		h(w, r)
	}
}

// installRequest is POST /v1/accounts/{name}/token.
type installRequest struct {
	Code         string `json:"code"`
	CodeVerifier string `json:"code_verifier"`
	RedirectURI  string `json:"redirect_uri"`
	RefreshToken string `json:"refresh_token"`
}

func (a *app) installToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if a.tokens == nil {
		adminError(w, http.StatusConflict, "tokens cannot be stored: start mediagw with --secrets-key-file")
		return
	}
	acc, spec, ok := a.tokens.stored(name)
	if !ok {
		adminError(w, http.StatusNotFound, fmt.Sprintf("no OAuth 2.0 account %q is configured", name))
		return
	}
	var req installRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		adminError(w, http.StatusBadRequest, "the body is not a JSON object of code, code_verifier and redirect_uri (or refresh_token)")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var tok *oauth2.Token
	switch {
	case req.Code != "" && req.CodeVerifier != "" && req.RedirectURI != "":
		cfg := *spec.cfg
		cfg.RedirectURL = req.RedirectURI
		var err error
		tok, err = cfg.Exchange(ctx, req.Code, oauth2.VerifierOption(req.CodeVerifier))
		if err != nil {
			var re *oauth2.RetrieveError
			msg := "X's token endpoint could not be reached"
			if errors.As(err, &re) {
				msg = fmt.Sprintf("X refused the authorization code (HTTP %d %s)", re.Response.StatusCode, re.ErrorCode)
			}
			adminError(w, http.StatusBadGateway, msg)
			return
		}
		if tok.ExpiresIn > 0 {
			tok.Expiry = time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
		}
		if sc, _ := tok.Extra("scope").(string); sc != "" && !slices.Contains(strings.Fields(sc), "media.write") {
			adminError(w, http.StatusBadRequest, fmt.Sprintf("X granted the scopes %q without media.write, which media upload needs: authorize again with media.write", sc))
			return
		}
	case req.RefreshToken != "" && req.Code == "":
		tok = &oauth2.Token{RefreshToken: req.RefreshToken}
	default:
		adminError(w, http.StatusBadRequest, "give code, code_verifier and redirect_uri, or refresh_token")
		return
	}
	held, release, err := a.tokens.store.Lock(ctx, name, a.cfg.Secrets.TokenLeaseTTL)
	if err != nil {
		adminError(w, http.StatusServiceUnavailable, "the account's token lease could not be taken")
		return
	}
	defer release()
	_, v, err := a.tokens.store.Load(held, name)
	if err == nil {
		_, err = a.tokens.store.CompareAndSwap(held, name, v, tok)
	}
	if err != nil {
		a.log.Error("a token pair could not be stored", "account", name, "error", err.Error())
		adminError(w, http.StatusServiceUnavailable, "the token pair could not be stored")
		return
	}
	release()
	a.log.Info("account token installed", "account", name)
	// No restart: the account reads the new pair now (and every use of a
	// reauth_required account looks for one).
	if err := acc.Sync(ctx); err != nil {
		a.log.Warn("the installed token pair could not be read back", "account", name, "error", err.Error())
	}
	for _, v := range a.accountViews() {
		if v.Name == name {
			writeJSON(w, http.StatusOK, v)
			return
		}
	}
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if a.tokens == nil {
		adminError(w, http.StatusConflict, "no tokens are stored: mediagw runs without --secrets-key-file")
		return
	}
	held, release, err := a.tokens.store.Lock(r.Context(), name, a.cfg.Secrets.TokenLeaseTTL)
	if err != nil {
		adminError(w, http.StatusServiceUnavailable, "the account's token lease could not be taken")
		return
	}
	defer release()
	if err := a.tokens.store.Delete(held, name); err != nil {
		adminError(w, http.StatusServiceUnavailable, "the stored token pair could not be deleted")
		return
	}
	if acc, _, ok := a.tokens.stored(name); ok {
		acc.Forget()
		_ = acc.Sync(r.Context())
	}
	a.log.Info("account logged out: its stored tokens are deleted", "account", name)
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// accountGauge reports the stored accounts per state:
// mediagw.x.accounts{state}.
func (a *app) accountGauge(mp metric.MeterProvider) error {
	g, err := mp.Meter("mediagw").Int64ObservableGauge("mediagw.x.accounts",
		metric.WithDescription("Stored OAuth 2.0 X accounts by state (ok, expiring, refresh_failing, reauth_required)."))
	if err != nil {
		return err
	}
	_, err = mp.Meter("mediagw").RegisterCallback(func(_ context.Context, o metric.Observer) error {
		n := map[upstream.AccountState]int64{upstream.AccountOK: 0, upstream.AccountExpiring: 0,
			upstream.AccountRefreshFailing: 0, upstream.AccountReauthRequired: 0}
		if a.tokens != nil {
			for _, h := range a.tokens.health() {
				n[h.State]++
			}
		}
		for st, c := range n {
			o.ObserveInt64(g, c, metric.WithAttributes(attribute.String("state", string(st))))
		}
		return nil
	}, g)
	return err
}
