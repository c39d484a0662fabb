// Package redisstore keeps the state several mediagw replicas share in
// one Redis server: the upload ledger ([Store.Ledger], a ledger.Ledger),
// the status relay's terminal states, poll leases and change messages
// ([Store.Status], a relay.StatusStore), and the rate-limit budgets X
// announced ([Store.Budgets], which the upstream client's BudgetStore
// takes).
//
// # Leases and fencing
//
// A lease is a key set with SET NX PX to a random token of its holder and
// renewed (PEXPIRE, only while it still holds the token) every third of
// its TTL. A holder that cannot renew for a whole TTL (Redis unreachable,
// the process paused) takes the lease as lost and stops; a holder that
// died stops renewing, so its lease expires and any replica may take the
// key. Every ledger write is a Lua script that writes only while the lease
// holds the writer's token: a holder that lost its lease can never
// overwrite the new holder's progress. A takeover publishes a stop request
// on the key's channel (repeated while it waits) and waits until the
// holder released the lease or it expired.
//
// # Keys
//
// Every key starts with the prefix (default "mediagw:"): ledger:<key> (the
// entry as JSON, until its expiry and an hour), ledger-lease:<key>,
// ledger-expires (a sorted set of the entries' expiry, for Sweep),
// ledger-pending (a sorted set of the keys whose entry's actions are
// pending, for the actions scan), status:<key> (with a TTL),
// poll-lease:<key>, rl:<key> (a hash that expires with X's window), and
// the channels ch:stop:<lease key> and ch:status:<key>, which every
// replica receives through one pattern subscription.
//
// One Redis server (or a primary): Redis Cluster is not supported, as the
// scripts touch several keys.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Options.
const (
	DefaultPrefix   = "mediagw:"
	DefaultLeaseTTL = 10 * time.Second
	// pingEvery is how often the store checks that Redis answers.
	pingEvery = time.Second
)

// Options configure a Store.
type Options struct {
	// Prefix starts every key and channel; default "mediagw:".
	Prefix string
	// LeaseTTL is how long a lease outlives its holder's last renewal;
	// default 10 s.
	LeaseTTL time.Duration
	// Password, when set, overrides the URL's.
	Password string
	// OnHealth is called (from one goroutine, in order) each time Redis
	// stops or starts answering: with the error, or nil once it is back.
	OnHealth func(err error)
	// Logger receives warnings; default discards.
	Logger *slog.Logger
}

// Store is the connection to Redis every part shares.
type Store struct {
	rdb      *redis.Client
	prefix   string
	ttl      time.Duration
	log      *slog.Logger
	onHealth func(error)
	addr     string

	ps       *redis.PubSub
	stopPing chan struct{}
	wg       sync.WaitGroup
	health   atomic.Pointer[error] // nil: answering
	closed   atomic.Bool
	// indexed is set once the ledger's entries stored before its index of
	// pending actions existed were indexed (ledgerscan.go).
	indexed atomic.Bool

	mu     sync.Mutex
	leases map[string]*lease                     // held by this process, by lease key
	subs   map[string]map[*subscription]struct{} // by status key
}

// Open connects to the Redis that url names (redis://[user:password@]host:port/db,
// or rediss:// for TLS; a prefix=… query parameter sets the key prefix,
// other parameters are go-redis's) and checks that it answers.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	url, prefix, err := cutPrefix(url)
	if err != nil {
		return nil, err
	}
	if o.Prefix == "" {
		o.Prefix = prefix
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %s", scrub(err.Error(), url))
	}
	if o.Password != "" {
		opt.Password = o.Password
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	logOnce.Do(func() { redis.SetLogger(slogLogger{o.Logger}) })
	// Calls fail fast while Redis is away, rather than holding uploads for
	// the default timeouts.
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	opt.MaxRetries = 1
	s := &Store{
		rdb: redis.NewClient(opt), prefix: o.Prefix, ttl: o.LeaseTTL, log: o.Logger, onHealth: o.OnHealth,
		addr: opt.Addr, stopPing: make(chan struct{}),
		leases: map[string]*lease{}, subs: map[string]map[*subscription]struct{}{},
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.rdb.Ping(pctx).Err(); err != nil {
		_ = s.rdb.Close()
		return nil, fmt.Errorf("redis at %s does not answer: %s", opt.Addr, scrub(err.Error(), url))
	}
	s.ps = s.rdb.PSubscribe(pctx, s.prefix+"ch:*")
	if _, err := s.ps.Receive(pctx); err != nil {
		_ = s.ps.Close()
		_ = s.rdb.Close()
		return nil, fmt.Errorf("redis at %s: subscribing: %w", opt.Addr, err)
	}
	s.wg.Add(2)
	go s.dispatch(s.ps.Channel(redis.WithChannelSize(256)))
	go s.ping()
	return s, nil
}

// logOnce routes go-redis's own log lines (its logger is global) to the
// first Store's logger, at debug level: the store reports what matters
// (Redis unreachable, back) itself.
var logOnce sync.Once

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Printf(ctx context.Context, format string, v ...any) {
	s.l.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// cutPrefix takes the prefix parameter out of a Redis URL.
func cutPrefix(raw string) (string, string, error) {
	u, err := neturl.Parse(raw)
	if err != nil {
		return "", "", errors.New("redis URL: not a URL") // the error would quote it, password and all
	}
	q := u.Query()
	prefix := q.Get("prefix")
	if !q.Has("prefix") {
		return raw, "", nil
	}
	q.Del("prefix")
	u.RawQuery = q.Encode()
	return u.String(), prefix, nil
}

// scrub removes the URL (and so its password) from a message.
func scrub(msg, url string) string {
	if url == "" {
		return msg
	}
	return strings.ReplaceAll(msg, url, "<redis URL>")
}

// Client is the store's Redis client, for the other state mediagw keeps
// in the same Redis (the sealed OAuth 2.0 tokens); the store closes it.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Addr is the server's host:port (for logs: no credentials).
func (s *Store) Addr() string { return s.addr }

// LeaseTTL is how long a lease outlives its holder's last renewal.
func (s *Store) LeaseTTL() time.Duration { return s.ttl }

// Ready returns nil while Redis answers, else the last error.
func (s *Store) Ready() error {
	if p := s.health.Load(); p != nil {
		return *p
	}
	return nil
}

// ping checks every second that Redis answers and reports the changes.
func (s *Store) ping() {
	defer s.wg.Done()
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.stopPing:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), pingEvery)
		err := s.rdb.Ping(ctx).Err()
		cancel()
		was := s.Ready()
		if err != nil {
			err = fmt.Errorf("redis at %s does not answer: %w", s.addr, err)
			s.health.Store(&err)
		} else {
			s.health.Store(nil)
		}
		if (was == nil) != (err == nil) && s.onHealth != nil {
			s.onHealth(err)
		}
	}
}

// dispatch routes the messages of the pattern subscription: stop requests
// to this process's leases, status changes to its subscribers.
func (s *Store) dispatch(ch <-chan *redis.Message) {
	defer s.wg.Done()
	stopPrefix, statusPrefix := s.prefix+"ch:stop:", s.prefix+"ch:status:"
	for m := range ch {
		if k, ok := strings.CutPrefix(m.Channel, stopPrefix); ok {
			s.mu.Lock()
			l := s.leases[k]
			s.mu.Unlock()
			if l != nil {
				l.stop()
			}
			continue
		}
		if k, ok := strings.CutPrefix(m.Channel, statusPrefix); ok {
			s.deliver(k, []byte(m.Payload))
		}
	}
}

// Close stops the store's goroutines and closes the connections. Leases
// still held are released.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.mu.Lock()
	held := make([]*lease, 0, len(s.leases))
	for _, l := range s.leases {
		held = append(held, l)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, l := range held {
		_ = l.release(ctx)
	}
	return s.shut()
}

// shut ends the goroutines and the connections.
func (s *Store) shut() error {
	close(s.stopPing)
	err := errors.Join(s.ps.Close(), s.rdb.Close())
	s.wg.Wait()
	return err
}

// newToken returns a random lease token.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
