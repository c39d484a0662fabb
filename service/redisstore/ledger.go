package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mediagw/mediagw/service/ledger"
	"github.com/redis/go-redis/v9"
)

// Ledger scripts.
var (
	// putScript stores an entry while the lease holds the writer's token,
	// keeps its expiry in the sorted set Sweep reads, and its key in the
	// index of pending actions (ledgerscan.go) when ARGV[7] is 1, else
	// takes it out. Every key gets a TTL: the entry lives until its expiry
	// and a grace (ARGV[5] ms; an entry without an expiry yet, ARGV[6] ms
	// from now), the sorted sets until their last member's (the index
	// scores each key by when its entry's TTL ends).
	// KEYS: lease, entry, expiries, pending. ARGV: token, entry, key,
	// expiry (ms; 0: none), grace (ms), TTL without an expiry (ms),
	// pending (1 or 0).
	putScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local function extend(k, at)
  if redis.call('PTTL', k) == -1 then redis.call('PEXPIREAT', k, at) else redis.call('PEXPIREAT', k, at, 'GT') end
end
local exp = tonumber(ARGV[4])
if exp > 0 then
  local until_ms = exp + tonumber(ARGV[5])
  redis.call('SET', KEYS[2], ARGV[2], 'PXAT', until_ms)
  redis.call('ZADD', KEYS[3], exp, ARGV[3])
  extend(KEYS[3], until_ms)
else
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[6])
  redis.call('ZREM', KEYS[3], ARGV[3])
end
if ARGV[7] == '1' then
  local at = redis.call('PEXPIRETIME', KEYS[2])
  redis.call('ZADD', KEYS[4], at, ARGV[3])
  extend(KEYS[4], at)
else
  redis.call('ZREM', KEYS[4], ARGV[3])
end
return 1`)
	// sweepScript removes an entry expired before ARGV[2] that no holder
	// has. KEYS: lease, entry, expiries, pending. ARGV: key, now (ms).
	sweepScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local at = redis.call('ZSCORE', KEYS[3], ARGV[1])
if (not at) or tonumber(at) >= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1`)
)

// entryGrace is how long an entry outlives its expiry in Redis (Sweep
// removes it before then; the TTL is the bound when no sweep runs), and
// unexpiringTTL the TTL of an entry whose upload has no expiry yet (before
// X's INIT answered).
const (
	entryGrace    = time.Hour
	unexpiringTTL = 24 * time.Hour
)

// Ledger is the ledger.Ledger in Redis. Closing it closes its Store.
type Ledger struct{ s *Store }

var _ ledger.Ledger = Ledger{}

// Ledger returns the upload ledger.
func (s *Store) Ledger() Ledger { return Ledger{s} }

func (l Ledger) entryKey(key string) string { return l.s.prefix + "ledger:" + key }
func (l Ledger) leaseKey(key string) string { return l.s.prefix + "ledger-lease:" + key }
func (l Ledger) expiries() string           { return l.s.prefix + "ledger-expires" }
func (l Ledger) pending() string            { return l.s.prefix + "ledger-pending" }

// Get implements ledger.Ledger.
func (l Ledger) Get(ctx context.Context, key string) (*ledger.Entry, error) {
	var get *redis.StringCmd
	var live *redis.IntCmd
	_, err := l.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, l.entryKey(key))
		live = p.Exists(ctx, l.leaseKey(key))
		return nil
	})
	if errors.Is(err, redis.Nil) || errors.Is(get.Err(), redis.Nil) {
		return nil, ledger.ErrNoEntry
	}
	if err != nil {
		return nil, err
	}
	e, err := decode(key, get.Val())
	if err != nil {
		return nil, err
	}
	e.Live = live.Val() == 1
	return e, nil
}

func decode(key, v string) (*ledger.Entry, error) {
	e := &ledger.Entry{}
	if err := json.Unmarshal([]byte(v), e); err != nil {
		return nil, fmt.Errorf("ledger entry %q is unreadable: %w", key, err)
	}
	return e, nil
}

// Acquire implements ledger.Ledger.
func (l Ledger) Acquire(ctx context.Context, key string, takeover bool) (ledger.Lease, *ledger.Entry, error) {
	ls, err := l.s.acquire(ctx, l.leaseKey(key), takeover)
	if errors.Is(err, errHeld) {
		return nil, nil, ledger.ErrHeld
	}
	if err != nil {
		return nil, nil, err
	}
	nl := &ledgerLease{lease: ls, l: l, name: key}
	v, err := l.s.rdb.Get(ctx, l.entryKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return nl, nil, nil
	}
	if err == nil {
		var e *ledger.Entry
		if e, err = decode(key, v); err == nil {
			return nl, e, nil
		}
	}
	_ = nl.Release(context.WithoutCancel(ctx))
	return nil, nil, err
}

// Sweep implements ledger.Ledger.
func (l Ledger) Sweep(ctx context.Context, now time.Time) (int, error) {
	ms := now.UnixMilli()
	keys, err := l.s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: l.expiries(), ByScore: true, Start: "-inf", Stop: "(" + strconv.FormatInt(ms, 10)}).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		r, err := sweepScript.Run(ctx, l.s.rdb, []string{l.leaseKey(k), l.entryKey(k), l.expiries(), l.pending()}, k, ms).Int()
		if err != nil {
			return n, err
		}
		n += r
	}
	return n, nil
}

// Close implements ledger.Ledger: it closes the Store.
func (l Ledger) Close() error { return l.s.Close() }

// ledgerLease is a ledger.Lease.
type ledgerLease struct {
	*lease
	l    Ledger
	name string // the ledger key
}

// Put implements ledger.Lease: fenced by the lease's token.
func (p *ledgerLease) Put(ctx context.Context, e *ledger.Entry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	var exp int64
	if !e.Expires.IsZero() {
		exp = e.Expires.UnixMilli()
	}
	pending := 0
	if e.ActionsPending() {
		pending = 1
	}
	n, err := putScript.Run(ctx, p.s.rdb, []string{p.key, p.l.entryKey(p.name), p.l.expiries(), p.l.pending()}, p.token, v, p.name, exp,
		entryGrace.Milliseconds(), unexpiringTTL.Milliseconds(), pending).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		p.lose(ledger.ErrLeaseLost)
		return ledger.ErrLeaseLost
	}
	return nil
}

// Stopped implements ledger.Lease.
func (p *ledgerLease) Stopped() <-chan struct{} { return p.stopped }

// Release implements ledger.Lease.
func (p *ledgerLease) Release(ctx context.Context) error { return p.release(ctx) }
