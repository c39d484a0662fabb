package redisstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/mediagw/mediagw/service/relay"
	"github.com/redis/go-redis/v9"
)

// subBuffer is how many messages a subscriber may be behind before it
// loses some.
const subBuffer = 16

// Status is the relay.StatusStore in Redis.
type Status struct{ s *Store }

var _ relay.StatusStore = Status{}

// Status returns the status relay's store.
func (s *Store) Status() Status { return Status{s} }

// Put implements relay.StatusStore.
func (st Status) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return st.s.rdb.Set(ctx, st.s.prefix+"status:"+key, value, max(ttl, time.Millisecond)).Err()
}

// Get implements relay.StatusStore.
func (st Status) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := st.s.rdb.Get(ctx, st.s.prefix+"status:"+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, relay.ErrNoEntry
	}
	return b, err
}

// PutOwner implements relay.OwnerStore: the record lives as long as the
// media (a Redis TTL).
func (st Status) PutOwner(ctx context.Context, mediaID, _ string, owner []byte, ttl time.Duration) error {
	return st.Put(ctx, "owner/"+mediaID, owner, ttl)
}

// GetOwner implements relay.OwnerStore.
func (st Status) GetOwner(ctx context.Context, mediaID string) ([]byte, bool, error) {
	b, err := st.Get(ctx, "owner/"+mediaID)
	if errors.Is(err, relay.ErrNoEntry) {
		return nil, false, nil
	}
	return b, err == nil, err
}

var _ relay.OwnerStore = Status{}

// AcquirePoll implements relay.StatusStore.
func (st Status) AcquirePoll(ctx context.Context, key string) (relay.PollLease, error) {
	l, err := st.s.acquire(ctx, st.s.prefix+"poll-lease:"+key, false)
	if errors.Is(err, errHeld) {
		return nil, relay.ErrHeld
	}
	if err != nil {
		return nil, err
	}
	return pollLease{l}, nil
}

// Publish implements relay.StatusStore.
func (st Status) Publish(ctx context.Context, key string, msg []byte) error {
	return st.s.rdb.Publish(ctx, st.s.prefix+"ch:status:"+key, msg).Err()
}

// Subscribe implements relay.StatusStore. Every replica receives every
// status channel through the store's one pattern subscription; this only
// registers the subscriber.
func (st Status) Subscribe(_ context.Context, key string) (relay.Subscription, error) {
	if st.s.closed.Load() {
		return nil, errors.New("redisstore: closed")
	}
	sub := &subscription{s: st.s, key: key, c: make(chan []byte, subBuffer)}
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	if st.s.subs[key] == nil {
		st.s.subs[key] = map[*subscription]struct{}{}
	}
	st.s.subs[key][sub] = struct{}{}
	return sub, nil
}

// deliver hands a message to the subscribers of key.
func (s *Store) deliver(key string, msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs[key] {
		select {
		case sub.c <- msg:
		default: // a subscriber that does not keep up loses the message
		}
	}
}

type subscription struct {
	s    *Store
	key  string
	c    chan []byte
	once sync.Once
}

func (sub *subscription) C() <-chan []byte { return sub.c }

func (sub *subscription) Close() error {
	sub.once.Do(func() {
		sub.s.mu.Lock()
		delete(sub.s.subs[sub.key], sub)
		if len(sub.s.subs[sub.key]) == 0 {
			delete(sub.s.subs, sub.key)
		}
		sub.s.mu.Unlock()
	})
	return nil
}
