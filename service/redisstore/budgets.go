package redisstore

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Rate-limit scripts over one hash per (credential, endpoint): remaining,
// reset (ms) and limit, expiring with X's window (plus budgetGrace).
var (
	// takeScript counts one request. Returns {1, reset} when it may go
	// (reset 0: nothing known), {0, reset} when the window is used up.
	// ARGV: now (ms).
	takeScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'remaining', 'reset')
if not v[1] or not v[2] then return {1, 0} end
local reset = tonumber(v[2])
if tonumber(ARGV[1]) >= reset then redis.call('DEL', KEYS[1]) return {1, 0} end
local rem = tonumber(v[1])
if rem > 0 then redis.call('HSET', KEYS[1], 'remaining', rem - 1) return {1, reset} end
return {0, reset}`)
	// observeScript records X's headers: a later window replaces the
	// known one; within the same window remaining only decreases.
	// ARGV: limit, remaining, reset (ms), grace (ms).
	observeScript = redis.NewScript(`
local reset = tonumber(ARGV[3])
local cur = redis.call('HGET', KEYS[1], 'reset')
if (not cur) or reset > tonumber(cur) then
  redis.call('HSET', KEYS[1], 'remaining', ARGV[2], 'reset', ARGV[3], 'limit', ARGV[1])
  redis.call('PEXPIREAT', KEYS[1], reset + tonumber(ARGV[4]))
elseif reset == tonumber(cur) then
  local rem = tonumber(redis.call('HGET', KEYS[1], 'remaining') or ARGV[2])
  if tonumber(ARGV[2]) < rem then redis.call('HSET', KEYS[1], 'remaining', ARGV[2]) end
  if tonumber(ARGV[1]) > 0 then redis.call('HSET', KEYS[1], 'limit', ARGV[1]) end
end
return 1`)
	// exhaustScript empties the window until reset (a 429), keeping a
	// later reset already known. ARGV: reset (ms), grace (ms).
	exhaustScript = redis.NewScript(`
local reset = tonumber(ARGV[1])
local cur = redis.call('HGET', KEYS[1], 'reset')
if cur and tonumber(cur) > reset then reset = tonumber(cur) end
redis.call('HSET', KEYS[1], 'remaining', 0, 'reset', reset)
redis.call('PEXPIREAT', KEYS[1], reset + tonumber(ARGV[2]))
return 1`)
)

// budgetGrace keeps a window's hash a little past its reset.
const budgetGrace = time.Second

// Budgets shares what any replica learns of X's rate limits (per
// credential identity and endpoint). Its methods are those of the
// upstream client's BudgetStore.
type Budgets struct{ s *Store }

// Budgets returns the shared rate-limit budgets.
func (s *Store) Budgets() Budgets { return Budgets{s} }

func (b Budgets) key(k string) string { return b.s.prefix + "rl:" + k }

// Take counts one request against key's window: ok false (nothing
// counted) when the window is used up until reset.
func (b Budgets) Take(ctx context.Context, key string, now time.Time) (time.Time, bool, error) {
	r, err := takeScript.Run(ctx, b.s.rdb, []string{b.key(key)}, now.UnixMilli()).Int64Slice()
	if err != nil || len(r) != 2 {
		return time.Time{}, true, err
	}
	var reset time.Time
	if r[1] > 0 {
		reset = time.UnixMilli(r[1])
	}
	return reset, r[0] == 1, nil
}

// Observe records X's x-rate-limit-* values for key (limit 0: not given).
func (b Budgets) Observe(ctx context.Context, key string, limit, remaining int, reset time.Time) error {
	return observeScript.Run(ctx, b.s.rdb, []string{b.key(key)}, limit, remaining, reset.UnixMilli(), budgetGrace.Milliseconds()).Err()
}

// Exhaust marks key's window used up until reset (X answered 429).
func (b Budgets) Exhaust(ctx context.Context, key string, reset time.Time) error {
	return exhaustScript.Run(ctx, b.s.rdb, []string{b.key(key)}, reset.UnixMilli(), budgetGrace.Milliseconds()).Err()
}
