package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediagw/mediagw/service/ledger"
	"github.com/redis/go-redis/v9"
)

// Lease scripts: they act only while the lease holds the caller's token.
var (
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// takeoverEvery is how often a takeover checks whether the holder let go,
// and (ten times slower) repeats its stop request.
const takeoverEvery = 50 * time.Millisecond

// lease is one held lease and its renewal.
type lease struct {
	s     *Store
	key   string // the lease's Redis key
	token string

	stopOnce sync.Once
	stopped  chan struct{} // asked to stop, or lost
	relOnce  sync.Once
	done     chan struct{} // released: ends the renewal
	halted   atomic.Bool   // tests: renewal paused, as in a process that stopped
	relErr   error
	lostErr  atomic.Pointer[error] // why the lease was lost
}

// lose stops the holder because the lease is no longer (surely) its own.
func (l *lease) lose(err error) {
	l.lostErr.CompareAndSwap(nil, &err)
	l.stop()
}

// Cause says why the lease was lost; nil while held, or when its holder
// was asked to stop.
func (l *lease) Cause() error {
	if p := l.lostErr.Load(); p != nil {
		return *p
	}
	return nil
}

// errHeld is acquire's refusal of a lease another holder has; the
// ledger and the status store answer it in their own words.
var errHeld = errors.New("redisstore: the lease is held")

// acquire takes the lease on key. Held by another: ErrHeld, or with
// takeover, a stop request to the holder and a wait until it is free.
func (s *Store) acquire(ctx context.Context, key string, takeover bool) (*lease, error) {
	if s.closed.Load() {
		return nil, errors.New("redisstore: closed")
	}
	token := newToken()
	for i := 0; ; i++ {
		ok, err := s.rdb.SetNX(ctx, key, token, s.ttl).Result()
		if err != nil {
			return nil, err
		}
		if ok {
			l := &lease{s: s, key: key, token: token, stopped: make(chan struct{}), done: make(chan struct{})}
			s.mu.Lock()
			s.leases[key] = l
			s.mu.Unlock()
			go l.renew()
			return l, nil
		}
		if !takeover {
			return nil, errHeld
		}
		if i%10 == 0 {
			// A holder in this process is told at once; one elsewhere
			// through the channel (again later, in case it missed it).
			s.mu.Lock()
			local := s.leases[key]
			s.mu.Unlock()
			if local != nil {
				local.stop()
			}
			if err := s.rdb.Publish(ctx, s.prefix+"ch:stop:"+key, "stop").Err(); err != nil {
				return nil, err
			}
		}
		t := time.NewTimer(takeoverEvery)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		}
	}
}

// renew extends the lease every third of its TTL. A lease another holder
// has now is lost at once; one that could not be renewed for a whole TTL
// is taken as lost (it may have expired meanwhile).
func (l *lease) renew() {
	ttl := l.s.ttl
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-t.C:
		case <-l.done:
			return
		}
		if l.halted.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
		n, err := renewScript.Run(ctx, l.s.rdb, []string{l.key}, l.token, ttl.Milliseconds()).Int()
		cancel()
		switch {
		case err == nil && n == 1:
			last = time.Now()
		case err == nil:
			l.lose(ledger.ErrLeaseLost) // expired, and maybe another holder has it
			return
		case time.Since(last) >= ttl:
			l.s.log.Warn("redis: a lease could not be renewed within its TTL; its holder stops", "error", err.Error())
			l.lose(fmt.Errorf("not renewed within %s: %w", ttl, err))
			return
		}
	}
}

func (l *lease) stop() { l.stopOnce.Do(func() { close(l.stopped) }) }

// release gives the lease up (if it is still this holder's).
func (l *lease) release(ctx context.Context) error {
	l.relOnce.Do(func() {
		close(l.done)
		l.stop()
		l.s.mu.Lock()
		if l.s.leases[l.key] == l {
			delete(l.s.leases, l.key)
		}
		l.s.mu.Unlock()
		err := releaseScript.Run(ctx, l.s.rdb, []string{l.key}, l.token).Err()
		if err != nil && !errors.Is(err, redis.Nil) {
			// The lease expires by itself.
			l.relErr = err
		}
	})
	return l.relErr
}

// pollLease is a relay.PollLease.
type pollLease struct{ *lease }

func (p pollLease) Lost() <-chan struct{}             { return p.stopped }
func (p pollLease) Release(ctx context.Context) error { return p.release(ctx) }
