package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/oauth2"
)

// TokenStore keeps the newest OAuth 2.0 token of each account, shared by
// every process using the account. It has the method set of mediagw's
// service/tokens.Store, declared here so that neither package imports the
// other:
//
//   - Load returns the stored token and its version; (nil, 0, nil) for an
//     account never stored.
//   - CompareAndSwap stores a token over the version read, with a context
//     from Lock; it fails when another writer came first or the lease ended.
//   - Lock takes the account's lease for ttl, waiting while another holder
//     has it; the context it returns carries the lease and ends with it.
type TokenStore interface {
	Load(ctx context.Context, account string) (*oauth2.Token, uint64, error)
	CompareAndSwap(ctx context.Context, account string, version uint64, tok *oauth2.Token) (uint64, error)
	Lock(ctx context.Context, account string, ttl time.Duration) (context.Context, func(), error)
}

// AccountState is the health of a stored OAuth 2.0 account.
type AccountState string

// The account states.
const (
	// AccountOK: the access token is valid.
	AccountOK AccountState = "ok"
	// AccountExpiring: the access token expires within the refresh margin;
	// the next use refreshes it.
	AccountExpiring AccountState = "expiring"
	// AccountRefreshFailing: the last refresh failed for a reason that may
	// pass (X or the store unreachable, X answered 5xx); it is retried with
	// backoff.
	AccountRefreshFailing AccountState = "refresh_failing"
	// AccountReauthRequired: X refused the refresh token (spent, revoked),
	// or granted a token without media.write: uploads fail at once until
	// the account is authorized again (mediagwctl accounts login).
	AccountReauthRequired AccountState = "reauth_required"
)

// scopeMediaWrite is the scope X requires of an OAuth 2.0 user token for
// media upload (FACTS §6).
const scopeMediaWrite = "media.write"

// AccountHealth is what an operator may know of an account: never a secret.
type AccountHealth struct {
	Account     string
	State       AccountState
	Scopes      []string  // granted scopes, as X answered them
	Expiry      time.Time // of the access token; zero when unknown
	LastRefresh time.Time // of this process's last successful refresh
	Reason      string    // why refresh_failing or reauth_required
}

// ReauthError reports that an account cannot be used until it is
// authorized again. StatusCode is 412, which mediagw's service answers as
// FailedPrecondition.
type ReauthError struct {
	Account string
	Reason  string // one clause, e.g. "X refused its refresh token"
	// Client: X refused the app's client credentials, not the user's
	// token: the remedy is the configuration, not a login.
	Client bool
}

// Error implements error: one sentence naming the account and the remedy.
func (e *ReauthError) Error() string {
	if e.Client {
		return fmt.Sprintf("the X account %q cannot be refreshed (%s): check its OAuth 2.0 client id and secret", e.Account, e.Reason)
	}
	return fmt.Sprintf("the X account %q must be authorized again (%s): run `mediagwctl accounts login %s`",
		e.Account, e.Reason, e.Account)
}

// StatusCode returns 412 Precondition Failed.
func (e *ReauthError) StatusCode() int { return http.StatusPreconditionFailed }

// ReauthRequired reports true, for packages classifying errors through
// their own interface{ ReauthRequired() bool }.
func (e *ReauthError) ReauthRequired() bool { return true }

// StoredOAuth2Options configure [StoredOAuth2].
type StoredOAuth2Options struct {
	// Account names the account in the store and in errors.
	Account string
	// Config is the app's client id and secret and X's token URL.
	Config *oauth2.Config
	// Seed is the configured token (usually a refresh token alone). It is
	// read only while the store has never seen the account: afterwards the
	// stored pair is the newest one.
	Seed *oauth2.Token
	// Store keeps the pairs; required.
	Store TokenStore
	// LeaseTTL bounds one refresh: the lease of the account is held this
	// long at most, and the call to X ends with it (default 20s).
	LeaseTTL time.Duration
	// Skew refreshes a token this long before it expires, or a quarter of
	// its remaining life when that is shorter (default 10s).
	Skew time.Duration
	// MaxTries is how many token calls one refresh makes while X fails
	// transiently (default 3); between refreshes that failed, uses fail at
	// once with the last error for a growing backoff.
	MaxTries uint
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Account is a stored, refreshing OAuth 2.0 credential: the newest token
// pair lives in a [TokenStore] shared by restarts and replicas. Refresh
// tokens are single-use, so a refresh takes the account's lease, re-reads
// the store and refreshes only if the stored token is still the one that
// needed refreshing (otherwise another process did it: its result is used);
// the new pair is stored before it is used. Uses waiting on the lease get
// the stored result.
type Account struct {
	o    StoredOAuth2Options
	id   string
	lock chan struct{} // held while obtaining a token

	// guarded by lock
	cur      *oauth2.Token
	ver      uint64
	margin   time.Duration // also guarded by mu: Health reads it
	rejected string        // an access token X answered 401
	badVer   uint64        // the stored version X refused (reauth_required)
	badKey   string        // and a hash of that token (versions restart after a delete)
	bo       *backoff.ExponentialBackOff
	retryAt  time.Time
	lastErr  error

	mu     sync.Mutex // guards the fields below, read by Health
	health AccountHealth
	seen   []string // recent secrets, for scrubbing
}

// StoredOAuth2 returns the credential of one stored OAuth 2.0 account.
func StoredOAuth2(o StoredOAuth2Options) (*Account, error) {
	if o.Account == "" || o.Store == nil || o.Config == nil {
		return nil, invalidf("a stored OAuth 2.0 account needs a name, a token store and the app's OAuth 2.0 settings")
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 20 * time.Second
	}
	if o.Skew <= 0 {
		o.Skew = 10 * time.Second
	}
	if o.MaxTries == 0 {
		o.MaxTries = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Account{o: o, lock: make(chan struct{}, 1),
		id: "oauth2:" + hashID("oauth2-account", o.Config.ClientID, o.Account),
		bo: &backoff.ExponentialBackOff{InitialInterval: time.Second, Multiplier: 2, MaxInterval: 30 * time.Second,
			RandomizationFactor: 0.2}}
	a.bo.Reset()
	a.health = AccountHealth{Account: o.Account, State: AccountOK}
	a.remember(o.Config.ClientSecret)
	if o.Seed != nil {
		a.remember(o.Seed.AccessToken, o.Seed.RefreshToken)
	}
	return a, nil
}

// Sync reads the store now, so that Health reflects it: a new pair (a
// login) clears reauth_required, and an account with nothing stored or
// configured becomes reauth_required. Uploads do the same on their own.
func (a *Account) Sync(ctx context.Context) error {
	if err := a.acquire(ctx); err != nil {
		return err
	}
	defer a.unlock()
	if a.Health().State == AccountReauthRequired {
		_ = a.reauthNow(ctx)
		return nil
	}
	tok, v, err := a.o.Store.Load(ctx, a.o.Account)
	switch {
	case err != nil:
		return &StoreError{a.o.Account, "read", err}
	case tok != nil && v != a.ver:
		if _, err := a.use(tok, v); err != nil {
			var re *ReauthError
			if errors.As(err, &re) {
				a.setState(AccountReauthRequired, re.Reason)
			}
		}
	case tok == nil && (a.o.Seed == nil || (a.o.Seed.AccessToken == "" && a.o.Seed.RefreshToken == "")):
		a.setState(AccountReauthRequired, "no token is stored or configured for it")
	}
	return nil
}

// Forget drops the token held in memory (after a logout deleted the stored
// one): the next use reads the store again.
func (a *Account) Forget() {
	if a.acquire(context.Background()) != nil {
		return
	}
	defer a.unlock()
	a.cur, a.ver, a.rejected = nil, 0, ""
	a.mu.Lock()
	a.health.Expiry, a.health.Scopes = time.Time{}, nil
	a.mu.Unlock()
}

// Name is the account's name.
func (a *Account) Name() string { return a.o.Account }

// Health reports the account's state; it never blocks on a refresh.
func (a *Account) Health() AccountHealth {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.health
	h.Scopes = slices.Clone(h.Scopes)
	if h.State == AccountOK && !h.Expiry.IsZero() && !a.o.Now().Add(a.margin).Before(h.Expiry) {
		h.State = AccountExpiring
	}
	return h
}

func (a *Account) remember(secrets ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range secrets {
		if s != "" && !slices.Contains(a.seen, s) {
			a.seen = append(a.seen, s)
		}
	}
	// The client secret first, then the newest tokens.
	if len(a.seen) > 17 {
		a.seen = append(a.seen[:1], a.seen[len(a.seen)-16:]...)
	}
}

func (a *Account) setState(st AccountState, reason string) {
	a.mu.Lock()
	a.health.State, a.health.Reason = st, reason
	a.mu.Unlock()
}

// usable reports whether t can be sent to X now.
func (a *Account) usable(t *oauth2.Token) bool {
	if t == nil || t.AccessToken == "" || t.AccessToken == a.rejected {
		return false
	}
	return t.Expiry.IsZero() || a.o.Now().Add(a.margin).Before(t.Expiry)
}

// adopt makes t (stored as version v) the current token; lock held.
func (a *Account) adopt(t *oauth2.Token, v uint64) {
	margin := a.margin
	if a.cur == nil || t.AccessToken != a.cur.AccessToken {
		margin = a.o.Skew
		if life := t.Expiry.Sub(a.o.Now()); !t.Expiry.IsZero() && life > 0 && life/4 < margin {
			margin = life / 4
		}
	}
	a.cur, a.ver = t, v
	a.remember(t.AccessToken, t.RefreshToken)
	a.mu.Lock()
	a.margin = margin // read by Health under mu
	a.health.Expiry = t.Expiry
	a.health.Scopes = scopesOf(t)
	a.mu.Unlock()
}

func scopesOf(t *oauth2.Token) []string {
	s, _ := t.Extra("scope").(string)
	return strings.Fields(s)
}

// scopeError is the reauth error of a token granted without media.write,
// or nil. A token whose answer had no scope is not judged.
func (a *Account) scopeError(t *oauth2.Token) error {
	sc := scopesOf(t)
	if len(sc) == 0 || slices.Contains(sc, scopeMediaWrite) {
		return nil
	}
	return &ReauthError{Account: a.o.Account,
		Reason: fmt.Sprintf("X granted the scopes %q without %s, which media upload needs", strings.Join(sc, " "), scopeMediaWrite)}
}

func (a *Account) acquire(ctx context.Context) error {
	select {
	case a.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (a *Account) unlock() { <-a.lock }

// reauthNow returns the ReauthError while the account needs one and the
// store holds nothing newer than what X refused; lock held.
func (a *Account) reauthNow(ctx context.Context) error {
	if a.Health().State != AccountReauthRequired {
		return nil
	}
	tok, v, err := a.o.Store.Load(ctx, a.o.Account)
	if err == nil && tok != nil && (v != a.badVer || tokenKey(tok) != a.badKey) {
		a.adopt(tok, v) // a login installed a new pair
		a.rejected, a.retryAt = "", time.Time{}
		if serr := a.scopeError(tok); serr != nil {
			a.markBad(tok, v)
			a.setState(AccountReauthRequired, serr.(*ReauthError).Reason)
			return serr
		}
		a.setState(AccountOK, "")
		return nil
	}
	a.mu.Lock()
	reason := a.health.Reason
	a.mu.Unlock()
	return &ReauthError{Account: a.o.Account, Reason: reason}
}

// markBad remembers the token X refused; lock held.
func (a *Account) markBad(t *oauth2.Token, v uint64) { a.badVer, a.badKey = v, tokenKey(t) }

func tokenKey(t *oauth2.Token) string {
	if t == nil {
		return ""
	}
	return hashID(t.AccessToken, t.RefreshToken)
}

// preflight fails at once, before INIT, when the account needs to be
// authorized again.
func (a *Account) preflight(ctx context.Context) error {
	if err := a.acquire(ctx); err != nil {
		return err
	}
	defer a.unlock()
	return a.reauthNow(ctx)
}

// token returns an access token to send, refreshing it if needed.
func (a *Account) token(ctx context.Context, base http.RoundTripper) (string, error) {
	if err := a.acquire(ctx); err != nil {
		return "", err
	}
	defer a.unlock()
	if err := a.reauthNow(ctx); err != nil {
		return "", err
	}
	if a.usable(a.cur) {
		return a.cur.AccessToken, nil
	}
	if now := a.o.Now(); now.Before(a.retryAt) && a.lastErr != nil {
		return "", a.lastErr
	}
	tok, err := a.obtain(ctx, base)
	if err != nil {
		var re *ReauthError
		if errors.As(err, &re) {
			a.setState(AccountReauthRequired, re.Reason)
		} else if ctx.Err() == nil {
			a.lastErr, a.retryAt = err, a.o.Now().Add(a.bo.NextBackOff())
			a.setState(AccountRefreshFailing, refreshReason(err))
		}
		return "", err
	}
	a.bo.Reset()
	a.lastErr, a.retryAt = nil, time.Time{}
	a.setState(AccountOK, "")
	return tok, nil
}

func refreshReason(err error) string {
	var tre *TokenRefreshError
	if errors.As(err, &tre) {
		return tre.Error()
	}
	return "the token store could not be used"
}
