package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/service/ledger/boltledger"
	"github.com/mediagw/mediagw/service/policy"
	"github.com/mediagw/mediagw/service/tokens"
	"github.com/mediagw/mediagw/service/tokens/boltstore"
	"github.com/mediagw/mediagw/service/tokens/redisstore"
	"github.com/mediagw/mediagw/upstream"
)

// secretsConfig are the flags of stored OAuth 2.0 tokens and of the admin
// API that installs them.
type secretsConfig struct {
	// KeyFile seals stored tokens (32 bytes); without it OAuth 2.0 tokens
	// are kept in memory only.
	KeyFile string
	// OldKeyFiles open tokens sealed before a key rotation.
	OldKeyFiles string
	// AdminTokenFile holds the bearer token the admin API's mutating
	// endpoints require.
	AdminTokenFile string
	// TokenLeaseTTL bounds one refresh of an account across replicas.
	TokenLeaseTTL time.Duration
	// AuthorizeURL is X's OAuth 2.0 authorize page, for accounts login.
	AuthorizeURL string
	// RedisPrefix starts the token keys in a Redis ledger.
	RedisPrefix string
	// AdminTLS serves the admin port with --tls-cert; with --tls-client-ca
	// a verified client certificate authorizes the mutating endpoints.
	AdminTLS bool
}

func (s *secretsConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&s.KeyFile, "secrets-key-file", "", "file of a 32-byte key sealing the stored OAuth 2.0 tokens (AES-256-GCM); without it rotated tokens live in memory only and are lost at restart")
	fs.StringVar(&s.OldKeyFiles, "secrets-old-key-files", "", "comma-separated key files of before a key rotation: they only open stored tokens, which are sealed again with --secrets-key-file")
	fs.StringVar(&s.AdminTokenFile, "admin-token-file", "", "file holding the bearer token that the admin port's mutating endpoints (account tokens) require; without it they are off")
	fs.StringVar(&s.AuthorizeURL, "x-authorize-url", "", "OAuth 2.0 authorize page that mediagwctl accounts login opens; default X's for X's API host, else <x-api-url>/i/oauth2/authorize")
	fs.StringVar(&s.RedisPrefix, "token-redis-prefix", "mediagw:", "with a Redis ledger, the prefix of the stored tokens' keys (deployments sharing one Redis need their own: account names repeat)")
	fs.BoolVar(&s.AdminTLS, "admin-tls", false, "serve the admin port over TLS with --tls-cert; with --tls-client-ca, a client certificate of that CA authorizes the mutating endpoints too (reads need none)")
	fs.DurationVar(&s.TokenLeaseTTL, "token-lease-ttl", 20*time.Second, "longest one OAuth 2.0 refresh may hold an account's lease (replicas wait for it)")
}

// oauth2Spec is OAuth 2.0 credentials as configured, with what a stored
// account is made of: it works as the in-memory refreshing credential
// until storeTokens replaces it.
type oauth2Spec struct {
	upstream.Credentials
	cfg  *oauth2.Config
	seed *oauth2.Token
}

func newOAuth2Spec(cfg *oauth2.Config, seed *oauth2.Token) oauth2Spec {
	return oauth2Spec{Credentials: upstream.OAuth2(cfg, seed), cfg: cfg, seed: seed}
}

// tokenStore is the open token store and the stored accounts.
type tokenStore struct {
	store tokens.Admin
	close func() error
	where string // for the log: "bbolt PATH" or "redis ADDR"
	keyID string

	mu       sync.Mutex
	accounts map[string]*upstream.Account
	specs    map[string]oauth2Spec
}

// accountSet is the named accounts the backend reads; SIGHUP replaces them.
type accountSet struct {
	mu sync.RWMutex
	m  map[string]upstream.Credentials
}

func newAccountSet(m map[string]upstream.Credentials) *accountSet { return &accountSet{m: m} }

func (s *accountSet) get(name string) (upstream.Credentials, bool) {
	if s == nil {
		return nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.m[name]
	return c, ok
}

// snapshot returns the accounts now (not to be modified).
func (s *accountSet) snapshot() map[string]upstream.Credentials {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m
}

func (s *accountSet) set(m map[string]upstream.Credentials) {
	s.mu.Lock()
	s.m = m
	s.mu.Unlock()
}

// openTokenStore opens the store on the ledger's backend: a file beside
// the bbolt ledger, or the Redis of a Redis ledger.
func (a *app) openTokenStore() (*tokenStore, error) {
	sc := a.cfg.Secrets
	if sc.KeyFile == "" {
		return nil, nil
	}
	key, err := tokens.LoadKeyFile(sc.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("--secrets-key-file: %w", err)
	}
	var old []*tokens.Key
	for _, p := range strings.Split(sc.OldKeyFiles, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		k, err := tokens.LoadKeyFile(p)
		if err != nil {
			return nil, fmt.Errorf("--secrets-old-key-files: %w", err)
		}
		old = append(old, k)
	}
	kr := tokens.NewKeyring(key, old...)
	ts := &tokenStore{accounts: map[string]*upstream.Account{}, specs: map[string]oauth2Spec{}, keyID: key.ID()}
	spec := a.cfg.Ledger
	switch {
	case spec == "off":
		return nil, errors.New("--secrets-key-file needs a --ledger to store the tokens in (a file or redis://…), not off")
	case strings.HasPrefix(spec, "redis://") || strings.HasPrefix(spec, "rediss://"):
		// The shared Redis's own client (its URL may carry ?prefix=, which
		// names the ledger's keys, not the tokens').
		if a.shared == nil {
			return nil, errors.New("--secrets-key-file: the Redis ledger is not open")
		}
		s, err := redisstore.New(a.shared.Client(), sc.RedisPrefix, kr)
		if err != nil {
			return nil, err
		}
		ts.store, ts.close, ts.where = s, func() error { return nil }, "redis "+a.shared.Addr()
	default:
		// The bbolt ledger's own file: one file to back up, one process
		// holding it.
		l, ok := a.ledger.(*boltledger.Ledger)
		if !ok {
			return nil, errors.New("--secrets-key-file: the ledger is not open")
		}
		s, err := boltstore.New(l.DB(), "oauth2-tokens", kr)
		if err != nil {
			return nil, err
		}
		ts.store, ts.close, ts.where = s, func() error { return nil }, "bbolt "+l.Path()
	}
	// Every stored token must open with the keys given: a wrong key is
	// found now, naming the file, not at the first upload.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names, err := ts.store.Accounts(ctx)
	for _, n := range names {
		if err == nil {
			_, _, err = ts.store.Load(ctx, n)
		}
	}
	if err != nil {
		_ = ts.close()
		return nil, fmt.Errorf("--secrets-key-file %s: %w", sc.KeyFile, err)
	}
	return ts, nil
}

// storeTokens opens the token store and turns every configured OAuth 2.0
// credential (the default one and the --accounts ones) into a stored
// account. Without --secrets-key-file they stay in memory, with a warning
// naming the flag.
func (a *app) storeTokens(creds upstream.Credentials, mp metric.MeterProvider) (_ upstream.Credentials, err error) {
	defer func() { a.defaultCreds = creds }()
	if err := a.accountGauge(mp); err != nil {
		return nil, err
	}
	specs := map[string]oauth2Spec{}
	if s, ok := creds.(oauth2Spec); ok {
		specs[defaultAccountName] = s
	}
	for n, c := range a.accounts {
		if s, ok := c.(oauth2Spec); ok {
			specs[n] = s
		}
	}
	ts, err := a.openTokenStore()
	if err != nil {
		return nil, err
	}
	if ts == nil {
		for _, n := range sortedKeys(specs) {
			if s := specs[n]; s.seed.RefreshToken == "" && s.seed.AccessToken == "" {
				return nil, fmt.Errorf("OAuth 2.0 account %q has no refresh_token: give one, or set --secrets-key-file and run mediagwctl accounts login %s", n, n)
			}
		}
		if len(specs) > 0 {
			a.log.Warn("OAuth 2.0 tokens are kept in memory only: X spends a refresh token at every refresh, so a restart or a second replica breaks these accounts; set --secrets-key-file to store them sealed",
				"accounts", sortedKeys(specs))
		}
		return creds, nil
	}
	a.tokens = ts
	if s, ok := specs[defaultAccountName]; ok {
		if creds, err = ts.account(a, defaultAccountName, s); err != nil {
			return nil, err
		}
	}
	named, err := ts.resolve(a, a.accounts)
	if err != nil {
		return nil, err
	}
	a.accounts = named
	a.log.Info("OAuth 2.0 tokens stored sealed", "store", ts.where, "key_id", ts.keyID, "accounts", sortedKeys(specs))
	return creds, nil
}

// defaultAccountName is the name the --x-* credentials are stored under.
const defaultAccountName = policy.DefaultAccount

// account returns the stored account name, made once and kept across
// reloads while its configuration does not change.
func (ts *tokenStore) account(a *app, name string, s oauth2Spec) (*upstream.Account, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if acc, ok := ts.accounts[name]; ok && sameSpec(ts.specs[name], s) {
		return acc, nil
	}
	acc, err := upstream.StoredOAuth2(upstream.StoredOAuth2Options{Account: name, Config: s.cfg, Seed: s.seed,
		Store: ts.store, LeaseTTL: a.cfg.Secrets.TokenLeaseTTL})
	if err != nil {
		return nil, fmt.Errorf("account %q: %w", name, err)
	}
	// Health says at once whether the account has a token to use.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := acc.Sync(ctx); err != nil {
		a.log.Warn("the stored token of an account could not be read", "account", name, "error", err.Error())
	}
	ts.accounts[name], ts.specs[name] = acc, s
	return acc, nil
}

func sameSpec(a, b oauth2Spec) bool {
	return a.cfg != nil && b.cfg != nil && a.cfg.ClientID == b.cfg.ClientID && a.cfg.ClientSecret == b.cfg.ClientSecret &&
		a.cfg.Endpoint.TokenURL == b.cfg.Endpoint.TokenURL && a.seed.RefreshToken == b.seed.RefreshToken &&
		a.seed.AccessToken == b.seed.AccessToken
}

// resolve replaces the OAuth 2.0 specs of m with stored accounts.
func (ts *tokenStore) resolve(a *app, m map[string]upstream.Credentials) (map[string]upstream.Credentials, error) {
	out := make(map[string]upstream.Credentials, len(m))
	for n, c := range m {
		if s, ok := c.(oauth2Spec); ok {
			acc, err := ts.account(a, n, s)
			if err != nil {
				return nil, err
			}
			c = acc
		}
		out[n] = c
	}
	return out, nil
}

// stored returns the stored account called name (the default one too).
func (ts *tokenStore) stored(name string) (*upstream.Account, oauth2Spec, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	acc, ok := ts.accounts[name]
	return acc, ts.specs[name], ok
}

// health lists every stored account's health, sorted by name.
func (ts *tokenStore) health() []upstream.AccountHealth {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := make([]upstream.AccountHealth, 0, len(ts.accounts))
	for _, n := range sortedKeys(ts.accounts) {
		out = append(out, ts.accounts[n].Health())
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// reloadAccounts rereads --accounts (SIGHUP). A removed account's stored
// tokens stay until its logout.
func (a *app) reloadAccounts() error {
	if a.cfg.AccountsFile == "" {
		return nil
	}
	m, err := loadAccounts(a.cfg.AccountsFile, a.xURL)
	if err != nil {
		return err
	}
	r, err := loadAccountRules(a.cfg.AccountsFile)
	if err != nil {
		return err
	}
	if a.tokens != nil {
		if m, err = a.tokens.resolve(a, m); err != nil {
			return err
		}
	} else {
		// In memory, a credential that did not change keeps its rotated pair.
		for n, c := range m {
			if s, ok := c.(oauth2Spec); ok {
				if old, ok := a.accounts[n].(oauth2Spec); ok && sameSpec(old, s) {
					m[n] = old
				}
			}
		}
	}
	a.accounts = m
	a.accountSet.set(m)
	a.mediaRules.Store(&r)
	return nil
}
