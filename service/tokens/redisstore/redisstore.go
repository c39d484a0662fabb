// Package redisstore is a tokens.Store in Redis, shared by mediagw
// replicas. The refresh lease is a key set with SET NX PX to a random fence
// of its holder; every write is a Lua script that writes only while the
// lease key still holds the writer's fence and the stored version is the one
// the writer read, so a holder whose lease expired can never overwrite the
// token a later holder stored.
//
// # Keys
//
// Every key starts with the prefix:
//
//	tok:<account>        hash {v: version, s: sealed token}. No TTL: X's
//	                     refresh tokens do not expire while unused, and an
//	                     account idle for longer than any TTL must still
//	                     refresh; it is removed by Delete (logout).
//	tok-lease:<account>  the lease fence, with the lease's TTL (PX).
//	tok-accounts         set of the accounts with a tok: key, for Accounts.
//	                     No TTL: it lists exactly the tok: keys, which have
//	                     none; the scripts add and remove its members with
//	                     their keys.
//
// One Redis server (or a primary): the scripts touch several keys, so Redis
// Cluster is not supported.
package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/service/tokens"
)

// pollEvery is how often a waiting Lock tries to take a held lease.
const pollEvery = 20 * time.Millisecond

var (
	casScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local cur = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
if cur ~= tonumber(ARGV[2]) then return -2 end
redis.call('HSET', KEYS[2], 'v', cur + 1, 's', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
return cur + 1`)
	deleteScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
return 1`)
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// Store is a tokens.Admin in Redis.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	keys   *tokens.Keyring
}

var _ tokens.Admin = (*Store)(nil)

// New returns a store using rdb with keys under prefix, sealing with keys.
// It does not own rdb.
func New(rdb redis.UniversalClient, prefix string, keys *tokens.Keyring) (*Store, error) {
	if rdb == nil || keys == nil {
		return nil, errors.New("redisstore: a Redis client and a keyring are needed")
	}
	return &Store{rdb: rdb, prefix: prefix, keys: keys}, nil
}

func (s *Store) tokKey(a string) string   { return s.prefix + "tok:" + a }
func (s *Store) leaseKey(a string) string { return s.prefix + "tok-lease:" + a }
func (s *Store) setKey() string           { return s.prefix + "tok-accounts" }

// Load implements tokens.Store.
func (s *Store) Load(ctx context.Context, account string) (*oauth2.Token, uint64, error) {
	vals, err := s.rdb.HMGet(ctx, s.tokKey(account), "v", "s").Result()
	if err != nil {
		return nil, 0, fmt.Errorf("the token of account %q could not be read from Redis: %w", account, err)
	}
	vs, ok1 := vals[0].(string)
	sealed, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return nil, 0, nil
	}
	v, err := strconv.ParseUint(vs, 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("the stored token of account %q is damaged", account)
	}
	tok, err := s.keys.Open(account, []byte(sealed))
	if err != nil {
		return nil, 0, err
	}
	return tok, v, nil
}

// CompareAndSwap implements tokens.Store.
func (s *Store) CompareAndSwap(ctx context.Context, account string, version uint64, tok *oauth2.Token) (uint64, error) {
	fence, err := tokens.LeaseOf(ctx, s, account)
	if err != nil {
		return 0, err
	}
	sealed, err := s.keys.Seal(account, tok)
	if err != nil {
		return 0, err
	}
	n, err := casScript.Run(ctx, s.rdb, []string{s.leaseKey(account), s.tokKey(account), s.setKey()},
		fence, version, sealed, account).Int64()
	switch {
	case err != nil && ctx.Err() != nil:
		return 0, tokens.ErrLeaseLost
	case err != nil:
		return 0, fmt.Errorf("the token of account %q could not be written to Redis: %w", account, err)
	case n == -1:
		return 0, tokens.ErrLeaseLost
	case n == -2:
		return 0, tokens.ErrConflict
	}
	return uint64(n), nil
}

// Delete implements tokens.Admin.
func (s *Store) Delete(ctx context.Context, account string) error {
	fence, err := tokens.LeaseOf(ctx, s, account)
	if err != nil {
		return err
	}
	n, err := deleteScript.Run(ctx, s.rdb, []string{s.leaseKey(account), s.tokKey(account), s.setKey()},
		fence, account).Int64()
	switch {
	case err != nil:
		return fmt.Errorf("the token of account %q could not be deleted from Redis: %w", account, err)
	case n == -1:
		return tokens.ErrLeaseLost
	}
	return nil
}

// Accounts implements tokens.Admin.
func (s *Store) Accounts(ctx context.Context) ([]string, error) {
	out, err := s.rdb.SMembers(ctx, s.setKey()).Result()
	sort.Strings(out)
	return out, err
}

// Lock implements tokens.Store. The lease's local deadline counts from
// before SET was sent, so it ends no later than the key expires in Redis.
func (s *Store) Lock(ctx context.Context, account string, ttl time.Duration) (context.Context, func(), error) {
	if ttl < time.Millisecond {
		return nil, nil, errors.New("redisstore: a lease needs a TTL of at least 1ms")
	}
	fence := rand.Text()
	for {
		start := time.Now()
		ok, err := s.rdb.SetNX(ctx, s.leaseKey(account), fence, ttl).Result()
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, context.Cause(ctx)
			}
			return nil, nil, fmt.Errorf("the token lease of account %q could not be taken in Redis: %w", account, err)
		}
		if ok {
			held, cancel := tokens.WithLease(ctx, s, account, fence, start.Add(ttl))
			var once sync.Once
			return held, func() {
				once.Do(func() {
					cancel()
					rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
					defer rcancel()
					_ = releaseScript.Run(rctx, s.rdb, []string{s.leaseKey(account)}, fence).Err()
				})
			}, nil
		}
		t := time.NewTimer(pollEvery)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, nil, context.Cause(ctx)
		}
	}
}
