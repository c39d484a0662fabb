package accounts_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/service/tokens"
	"github.com/mediagw/mediagw/service/tokens/boltstore"
	"github.com/mediagw/mediagw/service/tokens/redisstore"
	"github.com/mediagw/mediagw/service/tokens/tokenstest"
	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// clock is a shared fake clock for the emulator and the credentials.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is one emulator, its clock and an upstream client.
type env struct {
	t     *testing.T
	clk   *clock
	x     *xfaketest.Server
	c     *upstream.Client
	oauth *oauth2.Config
	tr    *http.Transport
}

const tokenTTL = time.Hour

func newEnv(t *testing.T, o xfake.Options) *env {
	t.Helper()
	clk := newClock()
	o.Now, o.ClientID, o.ClientSecret, o.AccessTokenTTL = clk.Now, "cid", "csec", tokenTTL
	o.Seed = 1
	x := xfaketest.New(t, o)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := upstream.New(upstream.Config{BaseURL: x.URL, Credentials: upstream.BearerToken("unused"), Transport: tr,
		SegmentSize: 64 << 10, BackoffBase: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, clk: clk, x: x, c: c, tr: tr, oauth: &oauth2.Config{ClientID: "cid", ClientSecret: "csec",
		RedirectURL: "http://127.0.0.1:7777/callback", Scopes: []string{"media.write", "offline.access"},
		Endpoint: oauth2.Endpoint{AuthURL: x.URL + "/i/oauth2/authorize", TokenURL: x.URL + "/2/oauth2/token",
			AuthStyle: oauth2.AuthStyleInHeader}}}
}

// account is a stored credential on s with the configured refresh token rt.
func (e *env) account(s upstream.TokenStore, rt string, mod ...func(*upstream.StoredOAuth2Options)) *upstream.Account {
	e.t.Helper()
	o := upstream.StoredOAuth2Options{Account: "brand", Config: e.oauth, Seed: &oauth2.Token{RefreshToken: rt},
		Store: s, Now: e.clk.Now}
	for _, m := range mod {
		m(&o)
	}
	a, err := upstream.StoredOAuth2(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) tokenCalls() int64 { return e.x.X.Stats().Requests["token"] }
func (e *env) inits() int64      { return e.x.X.Stats().Requests["init"] }

// upload sends n bytes of MPEG-TS-looking media with creds.
func (e *env) upload(ctx context.Context, creds upstream.Credentials, n int) error {
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	data[0] = 0x47
	u, err := e.c.Begin(ctx, creds, upstream.InitParams{MediaType: "video/mp2t", TotalBytes: int64(n)})
	if err != nil {
		return err
	}
	if _, err := u.ReadFrom(bytes.NewReader(data)); err != nil {
		u.Abort(err)
		return err
	}
	if _, err := u.Finish(ctx); err != nil {
		u.Abort(err)
		return err
	}
	return nil
}

// login runs Authorization Code with PKCE against the emulator as
// mediagwctl accounts login does, and installs the pair in s.
func (e *env) login(s tokens.Store, scopes ...string) {
	e.t.Helper()
	cfg := *e.oauth
	if len(scopes) > 0 {
		cfg.Scopes = scopes
	}
	hc := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	v := oauth2.GenerateVerifier()
	resp, err := hc.Get(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(v)))
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		e.t.Fatalf("authorize answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	tok, err := cfg.Exchange(context.WithValue(context.Background(), oauth2.HTTPClient, hc), loc.Query().Get("code"),
		oauth2.VerifierOption(v))
	if err != nil {
		e.t.Fatal(err)
	}
	tok.Expiry = e.clk.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	ctx := context.Background()
	held, release, err := s.Lock(ctx, "brand", 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	defer release()
	_, v0, err := s.Load(held, "brand")
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := s.CompareAndSwap(held, "brand", v0, tok); err != nil {
		e.t.Fatal(err)
	}
}

// boltDB opens (or reopens) a bbolt file and a token store in it.
func boltDB(t *testing.T, path string, kr *tokens.Keyring) (*bolt.DB, *boltstore.Store) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := boltstore.New(db, "oauth2-tokens", kr)
	if err != nil {
		t.Fatal(err)
	}
	return db, s
}

func boltPath(t *testing.T) string { return filepath.Join(t.TempDir(), "ledger.db") }

// redisStore is a store on its own client to addr, under prefix: one replica.
func redisStore(t *testing.T, addr, prefix string, kr *tokens.Keyring) *redisstore.Store {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := redisstore.New(rdb, prefix, kr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func keyring(t *testing.T) *tokens.Keyring { return tokenstest.NewKeyring(t, "secrets.key") }

// The store contract and upstream's declaration of it are one method set.
var (
	_ upstream.TokenStore = tokens.Store(nil)
	_ tokens.Store        = upstream.TokenStore(nil)
)
