package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mediagw/mediagw/service/redisstore/redistest"
	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
)

func TestMain(m *testing.M) {
	code := redistest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A restart with the original configuration after two rotations goes on
// with the stored pair: one token call per rotation, the spent configured
// refresh token is never sent again.
func TestRestartAfterRotations(t *testing.T) {
	e := newEnv(t, xfake.Options{RefreshTokens: []string{"rt0"}, RevokeFamilyOnReuse: true})
	path, kr := boltPath(t), keyring(t)
	db, s := boltDB(t, path, kr)
	a := e.account(s, "rt0")
	for rotation := 1; rotation <= 2; rotation++ {
		if err := e.upload(ctxT(t), a, 100<<10); err != nil {
			t.Fatalf("upload at rotation %d: %v", rotation, err)
		}
		if n := e.tokenCalls(); n != int64(rotation) {
			t.Fatalf("rotation %d: %d token calls", rotation, n)
		}
		e.clk.Add(tokenTTL + time.Second)
	}
	// Restart: the file is closed and opened again, the credential is made
	// anew from the same configuration (refresh token rt0, spent long ago).
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, s = boltDB(t, path, kr)
	a = e.account(s, "rt0")
	for i := range 3 {
		if err := e.upload(ctxT(t), a, 70<<10); err != nil {
			t.Fatalf("upload %d after the restart: %v", i, err)
		}
	}
	if n := e.tokenCalls(); n != 3 {
		t.Fatalf("%d token calls after two rotations and a restart, want 3", n)
	}
	if h := a.Health(); h.State != upstream.AccountOK || !strings.Contains(strings.Join(h.Scopes, " "), "media.write") {
		t.Errorf("health %+v", h)
	}
	if r := e.x.X.Stats().RefreshReuses; r != 0 {
		t.Errorf("%d spent refresh tokens were presented again", r)
	}
}

// Three replicas share one Redis store; 50 uploads start once the access
// token expired: exactly one token call for that expiry, no upload fails,
// with and without family revocation.
func TestReplicasRefreshOnce(t *testing.T) {
	addr := redistest.Addr(t)
	for _, revoke := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "family-revocation"}[revoke], func(t *testing.T) {
			e := newEnv(t, xfake.Options{RefreshTokens: []string{"rt0"}, RevokeFamilyOnReuse: revoke})
			prefix, kr := redistest.Prefix(t), keyring(t)
			var replicas []*upstream.Account
			for range 3 {
				replicas = append(replicas, e.account(redisStore(t, addr, prefix, kr), "rt0"))
			}
			if err := e.upload(ctxT(t), replicas[0], 10<<10); err != nil {
				t.Fatal(err)
			}
			e.clk.Add(tokenTTL + time.Second)
			var wg sync.WaitGroup
			errs := make(chan error, 50)
			start := make(chan struct{})
			for i := range 50 {
				wg.Go(func() {
					<-start
					errs <- e.upload(ctxT(t), replicas[i%3], 20<<10+i)
				})
			}
			// Health is read while the tokens change (for the race detector).
			stopHealth := make(chan struct{})
			var hw sync.WaitGroup
			hw.Go(func() {
				for {
					select {
					case <-stopHealth:
						return
					default:
						for _, r := range replicas {
							_ = r.Health()
						}
					}
				}
			})
			close(start)
			wg.Wait()
			close(stopHealth)
			hw.Wait()
			close(errs)
			failed := 0
			for err := range errs {
				if err != nil {
					failed++
					t.Errorf("upload: %v", err)
				}
			}
			if n := e.tokenCalls(); n != 2 || failed != 0 {
				t.Fatalf("%d token calls (want 2: the first token and one refresh), %d of 50 uploads failed", n, failed)
			}
			t.Logf("50 uploads over 3 replicas after expiry: %d token call(s) for the expiry, %d failed", e.tokenCalls()-1, failed)
		})
	}
}

// frozen is a transport whose token requests hang until their context
// ends: a holder that stopped mid-refresh.
type frozen struct {
	base    http.RoundTripper
	started chan struct{}
	once    sync.Once
}

func (f *frozen) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/2/oauth2/token") {
		f.once.Do(func() { close(f.started) })
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	return f.base.RoundTrip(r)
}

// A holder that stops mid-refresh keeps the lease until its TTL: then
// another replica refreshes (one token call reaches X) and its uploads go
// on; the stopped holder's call was cancelled with its lease.
func TestLeaseHolderStops(t *testing.T) {
	addr := redistest.Addr(t)
	e := newEnv(t, xfake.Options{RefreshTokens: []string{"rt0"}, RevokeFamilyOnReuse: true})
	prefix, kr := redistest.Prefix(t), keyring(t)
	const ttl = 400 * time.Millisecond
	stuck := e.account(redisStore(t, addr, prefix, kr), "rt0", func(o *upstream.StoredOAuth2Options) { o.LeaseTTL = ttl })
	live := e.account(redisStore(t, addr, prefix, kr), "rt0")
	fz := &frozen{base: e.tr, started: make(chan struct{})}
	stuckClient, err := upstream.New(upstream.Config{BaseURL: e.x.URL, Credentials: stuck, Transport: fz,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	stuckErr := make(chan error, 1)
	go func() {
		_, err := stuckClient.Begin(ctxT(t), stuck, upstream.InitParams{MediaType: "video/mp2t", TotalBytes: 10})
		stuckErr <- err
	}()
	select {
	case <-fz.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck replica never started its refresh")
	}
	began := time.Now()
	if err := e.upload(ctxT(t), live, 30<<10); err != nil {
		t.Fatalf("upload on the live replica: %v", err)
	}
	waited := time.Since(began)
	if n := e.tokenCalls(); n != 1 {
		t.Fatalf("%d token calls reached X, want 1", n)
	}
	if waited > ttl+5*time.Second {
		t.Errorf("the live replica waited %v for a %v lease", waited, ttl)
	}
	var tre *upstream.TokenRefreshError
	if err := <-stuckErr; !errors.As(err, &tre) {
		t.Fatalf("the stuck replica's INIT: %v, want a TokenRefreshError", err)
	}
	if h := stuck.Health(); h.State != upstream.AccountRefreshFailing {
		t.Errorf("stuck replica health %+v", h)
	}
	t.Logf("the live replica got its token %v after the stuck holder's lease (TTL %v) began to run out", waited, ttl)
}

// A spent refresh token: the account becomes reauth_required, uploads fail
// before INIT naming the account and the remedy, and a login restores it
// without a new credential.
func TestReauthAndLogin(t *testing.T) {
	e := newEnv(t, xfake.Options{RefreshTokens: []string{"rt0"}})
	_, s := boltDB(t, boltPath(t), keyring(t))
	a := e.account(s, "rt0")
	if err := e.upload(ctxT(t), a, 10<<10); err != nil {
		t.Fatal(err)
	}
	// Someone else spends the stored refresh token.
	tok, _, err := s.Load(ctxT(t), "brand")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(e.x.URL+"/2/oauth2/token", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {tok.RefreshToken}, "client_id": {"cid"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The emulator wants the client's Basic auth: do it as a client would.
	if resp.StatusCode == http.StatusUnauthorized {
		req, _ := http.NewRequest(http.MethodPost, e.x.URL+"/2/oauth2/token", strings.NewReader(url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("cid", "csec")
		if resp, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("spending the stored refresh token: %d", resp.StatusCode)
	}
	e.clk.Add(tokenTTL + time.Second)
	err = e.upload(ctxT(t), a, 10<<10)
	var re *upstream.ReauthError
	if !errors.As(err, &re) || re.StatusCode() != http.StatusPreconditionFailed {
		t.Fatalf("upload with a spent refresh token: %v, want a ReauthError", err)
	}
	for _, want := range []string{`"brand"`, "mediagwctl accounts login brand"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %s", err, want)
		}
	}
	if strings.Contains(err.Error(), e.x.URL) || strings.Contains(err.Error(), tok.RefreshToken) {
		t.Errorf("error %q shows the URL or the token", err)
	}
	if h := a.Health(); h.State != upstream.AccountReauthRequired {
		t.Fatalf("health %+v", h)
	}
	inits, calls := e.inits(), e.tokenCalls()
	if err := e.upload(ctxT(t), a, 10<<10); !errors.As(err, &re) {
		t.Fatalf("second upload: %v", err)
	}
	if e.inits() != inits || e.tokenCalls() != calls {
		t.Errorf("a reauth_required upload reached X: %d INITs and %d token calls more", e.inits()-inits, e.tokenCalls()-calls)
	}
	t.Logf("reauth_required: %q", err)

	e.login(s)
	if err := e.upload(ctxT(t), a, 10<<10); err != nil {
		t.Fatalf("upload after login: %v", err)
	}
	if h := a.Health(); h.State != upstream.AccountOK {
		t.Errorf("health after login %+v", h)
	}
}

// A token granted without media.write is refused when obtained, naming
// the scope, before any INIT.
func TestScopeChecked(t *testing.T) {
	e := newEnv(t, xfake.Options{})
	_, s := boltDB(t, boltPath(t), keyring(t))
	e.login(s, "tweet.read", "offline.access")
	a := e.account(s, "")
	err := e.upload(ctxT(t), a, 10<<10)
	var re *upstream.ReauthError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "media.write") {
		t.Fatalf("upload with a token without media.write: %v", err)
	}
	if n := e.inits(); n != 0 {
		t.Errorf("%d INITs reached X", n)
	}
	if h := a.Health(); h.State != upstream.AccountReauthRequired || strings.Join(h.Scopes, " ") != "tweet.read offline.access" {
		t.Errorf("health %+v", h)
	}
	e.login(s)
	if err := e.upload(ctxT(t), a, 10<<10); err != nil {
		t.Fatalf("upload after a login with media.write: %v", err)
	}
}

// A client secret X refuses is told apart from a refused refresh token:
// the remedy named is the configuration, not a login.
func TestWrongClientSecret(t *testing.T) {
	e := newEnv(t, xfake.Options{RefreshTokens: []string{"rt0"}})
	_, s := boltDB(t, boltPath(t), keyring(t))
	cfg := *e.oauth
	cfg.ClientSecret = "wrong"
	a := e.account(s, "rt0", func(o *upstream.StoredOAuth2Options) { o.Config = &cfg })
	err := e.upload(ctxT(t), a, 10<<10)
	var re *upstream.ReauthError
	if !errors.As(err, &re) || !re.Client || !strings.Contains(err.Error(), "client id and secret") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("upload with a wrong client secret: %v", err)
	}
}
