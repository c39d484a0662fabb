package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/mediagw/mediagw/service/ledger"
)

var _ ledger.PendingScanner = Ledger{}

// scanBatch is how many entries one MGET of Scan reads.
const scanBatch = 100

// Index scripts. Both compare the entry with the value the caller read,
// so that a write between the read and the script is never undone.
var (
	// indexScript adds a key to the index of pending actions, scored by
	// when its entry's TTL ends (an entry stored without a TTL, by an
	// older mediagw: ARGV[3] ms from now), while its entry is still
	// ARGV[2]. KEYS: entry, pending. ARGV: key, entry, TTL (ms).
	indexScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
local at = redis.call('PEXPIRETIME', KEYS[1])
if at < 0 then
  local t = redis.call('TIME')
  at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
end
redis.call('ZADD', KEYS[2], at, ARGV[1])
if redis.call('PTTL', KEYS[2]) == -1 then redis.call('PEXPIREAT', KEYS[2], at) else redis.call('PEXPIREAT', KEYS[2], at, 'GT') end
return 1`)
	// unindexScript takes a stale key out of the index while its entry is
	// still ARGV[2] (the entry's actions are no longer pending) or is gone.
	// KEYS: entry, pending. ARGV: key, entry ('' when it was gone).
	unindexScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`)
)

// Scan implements ledger.Scanner over the ledger's expiry index (every
// stored entry with an expiry is in it), reading the entries in batches.
func (l Ledger) Scan(ctx context.Context, fn func(string, *ledger.Entry) bool) error {
	keys, err := l.s.rdb.ZRange(ctx, l.expiries(), 0, -1).Result()
	if err != nil {
		return err
	}
	return l.read(ctx, keys, func(k, _ string, e *ledger.Entry) (bool, error) {
		if e == nil {
			return true, nil // removed since the index was read
		}
		return fn(k, e), nil
	})
}

// ScanPending implements ledger.PendingScanner over the index of pending
// actions, which every Put writes in its script. Members whose entry is
// gone (expired by its TTL) or no longer pending (written by a mediagw
// without the index) are skipped and taken out. The first call of a
// Store reads the whole ledger once and indexes the pending entries it
// finds, so that those stored before the index existed are listed too.
func (l Ledger) ScanPending(ctx context.Context, fn func(string, *ledger.Entry) bool) error {
	if !l.s.indexed.Load() {
		if err := l.indexAll(ctx); err != nil {
			return err
		}
		l.s.indexed.Store(true)
	}
	keys, err := l.s.rdb.ZRange(ctx, l.pending(), 0, -1).Result()
	if err != nil {
		return err
	}
	return l.read(ctx, keys, func(k, raw string, e *ledger.Entry) (bool, error) {
		if e == nil || !e.ActionsPending() {
			return true, unindexScript.Run(ctx, l.s.rdb, []string{l.entryKey(k), l.pending()}, k, raw).Err()
		}
		return fn(k, e), nil
	})
}

// indexAll adds every pending entry of the ledger to the index.
func (l Ledger) indexAll(ctx context.Context) error {
	keys, err := l.s.rdb.ZRange(ctx, l.expiries(), 0, -1).Result()
	if err != nil {
		return err
	}
	return l.read(ctx, keys, func(k, raw string, e *ledger.Entry) (bool, error) {
		if e == nil || !e.ActionsPending() {
			return true, nil
		}
		return true, indexScript.Run(ctx, l.s.rdb, []string{l.entryKey(k), l.pending()}, k, raw, unexpiringTTL.Milliseconds()).Err()
	})
}

// read reads the entries of keys in batches of scanBatch and calls fn
// with each, as stored (raw) and decoded; with "" and nil for a key whose
// entry is gone. It stops when fn returns false or an error.
func (l Ledger) read(ctx context.Context, keys []string, fn func(key, raw string, e *ledger.Entry) (bool, error)) error {
	for len(keys) > 0 {
		n := min(len(keys), scanBatch)
		batch := keys[:n]
		keys = keys[n:]
		names := make([]string, len(batch))
		for i, k := range batch {
			names[i] = l.entryKey(k)
		}
		vals, err := l.s.rdb.MGet(ctx, names...).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for i, v := range vals {
			s, _ := v.(string)
			var e *ledger.Entry
			if s != "" {
				if e, err = decode(batch[i], s); err != nil {
					return err
				}
			}
			more, err := fn(batch[i], s, e)
			if err != nil || !more {
				return err
			}
		}
	}
	return nil
}
