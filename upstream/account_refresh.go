package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/oauth2"
)

// StoreError reports that the token store could not be read or written.
// It names the account, never a token; StatusCode is 503.
type StoreError struct {
	Account string
	Op      string // "read", "lock" or "write"
	Err     error
}

// Error implements error.
func (e *StoreError) Error() string {
	return fmt.Sprintf("the token of X account %q could not be %s the token store", e.Account, map[string]string{
		"read": "read from", "lock": "locked in", "write": "written to"}[e.Op])
}

// Unwrap returns the store's error.
func (e *StoreError) Unwrap() error { return e.Err }

// StatusCode returns 503.
func (e *StoreError) StatusCode() int { return http.StatusServiceUnavailable }

// obtain returns a fresh access token: from the store if another process
// refreshed, else by refreshing under the account's lease; lock held.
func (a *Account) obtain(ctx context.Context, base http.RoundTripper) (string, error) {
	tok, v, err := a.o.Store.Load(ctx, a.o.Account)
	if err != nil {
		return "", &StoreError{a.o.Account, "read", err}
	}
	if tok != nil && a.usable(tok) {
		return a.use(tok, v)
	}
	held, release, err := a.o.Store.Lock(ctx, a.o.Account, a.o.LeaseTTL)
	if err != nil {
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		return "", &StoreError{a.o.Account, "lock", err}
	}
	defer release()
	// Re-read under the lease: whoever held it before may have stored a
	// new pair, which is then the one to use.
	tok, v, err = a.o.Store.Load(held, a.o.Account)
	if err != nil {
		return "", &StoreError{a.o.Account, "read", err}
	}
	if tok != nil && a.usable(tok) {
		return a.use(tok, v)
	}
	if tok == nil && v == 0 {
		// Never stored: the configured token is the newest there is.
		seed := a.o.Seed
		if seed == nil || (seed.RefreshToken == "" && seed.AccessToken == "") {
			return "", &ReauthError{Account: a.o.Account, Reason: "no token is stored or configured for it"}
		}
		if a.usable(seed) {
			nv, err := a.o.Store.CompareAndSwap(held, a.o.Account, 0, seed)
			if err != nil {
				return "", &StoreError{a.o.Account, "write", err}
			}
			return a.use(seed, nv)
		}
		tok = seed
	}
	if tok.RefreshToken == "" {
		return "", &ReauthError{Account: a.o.Account, Reason: "its access token expired and there is no refresh token"}
	}
	nt, err := a.refresh(held, base, tok.RefreshToken)
	if err != nil {
		var tre *TokenRefreshError
		if errors.As(err, &tre) && tre.StatusCode() == http.StatusUnauthorized {
			// X refused the refresh token. Another holder may have rotated
			// it meanwhile (a lease that expired under a slow holder):
			// re-read before declaring the account broken.
			if again, av, lerr := a.o.Store.Load(held, a.o.Account); lerr == nil && again != nil && av != v && a.usable(again) {
				return a.use(again, av)
			}
			a.markBad(tok, v)
			if tre.HTTPStatus == http.StatusUnauthorized || tre.ErrorCode == "invalid_client" || tre.ErrorCode == "unauthorized_client" {
				return "", &ReauthError{Account: a.o.Account, Client: true, Reason: "X refused the app's client credentials"}
			}
			return "", &ReauthError{Account: a.o.Account, Reason: "X refused its refresh token (spent or revoked)"}
		}
		return "", err
	}
	// Stored before it is used: X spent the old refresh token, so a pair
	// that is not stored would be lost at the next restart.
	nv, err := a.o.Store.CompareAndSwap(held, a.o.Account, v, nt)
	if err != nil {
		return "", &StoreError{a.o.Account, "write", err}
	}
	a.mu.Lock()
	a.health.LastRefresh = a.o.Now()
	a.mu.Unlock()
	return a.use(nt, nv)
}

// use adopts tok as the current token after checking its scope.
func (a *Account) use(tok *oauth2.Token, v uint64) (string, error) {
	a.adopt(tok, v)
	a.rejected = ""
	if err := a.scopeError(tok); err != nil {
		a.markBad(tok, v)
		return "", err
	}
	return tok.AccessToken, nil
}

// refresh spends rt at X's token endpoint, retrying transient failures with
// backoff within the lease.
func (a *Account) refresh(held context.Context, base http.RoundTripper, rt string) (*oauth2.Token, error) {
	rctx := context.WithValue(held, oauth2.HTTPClient, &http.Client{Transport: base})
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 200 * time.Millisecond
	op := func() (*oauth2.Token, error) {
		nt, err := a.o.Config.TokenSource(rctx, &oauth2.Token{RefreshToken: rt}).Token()
		if err == nil {
			return nt, nil
		}
		tre := refreshError(err)
		if tre.StatusCode() == http.StatusUnauthorized || held.Err() != nil {
			return nil, backoff.Permanent(tre)
		}
		return nil, tre
	}
	nt, err := backoff.Retry(held, op, backoff.WithBackOff(bo), backoff.WithMaxTries(a.o.MaxTries))
	if err != nil {
		var tre *TokenRefreshError
		if !errors.As(err, &tre) {
			err = &TokenRefreshError{transport: err}
		}
		return nil, err
	}
	if nt.RefreshToken == "" {
		nt.RefreshToken = rt
	}
	if nt.ExpiresIn > 0 {
		nt.Expiry = a.o.Now().Add(time.Duration(nt.ExpiresIn) * time.Second)
	}
	return nt, nil
}

func (a *Account) authorize(base http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		tok, err := a.token(req.Context(), base)
		if err != nil {
			return nil, err
		}
		return base.RoundTrip(withHeader(req, "Bearer "+tok))
	})
}

func (a *Account) identity() string { return a.id }

func (a *Account) secrets() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

func (a *Account) invalidate(rejected string) bool {
	if a.acquire(context.Background()) != nil {
		return false
	}
	defer a.unlock()
	if a.cur != nil && a.cur.AccessToken == rejected {
		a.rejected = rejected
	}
	return a.cur == nil || a.cur.RefreshToken != "" || (a.o.Seed != nil && a.o.Seed.RefreshToken != "")
}
