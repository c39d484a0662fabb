package relay

import (
	"context"
	"errors"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Errors of a StatusStore.
var (
	ErrNoEntry = errors.New("status store: no entry for the key")
	ErrHeld    = errors.New("status store: the poll lease is held by another poller")
)

// StatusStore is what the status relay keeps and shares: values with a
// lifetime (terminal states for the media's lifetime, the latest state a
// poller saw), one poll lease per media (so that one poller asks X for
// STATUS however many watchers there are), and the changes the poller
// publishes to the watchers. The in-process implementation
// ([NewMemoryStatusStore]) is the default; service/redisstore shares it
// between replicas. One conformance suite (service/statustest) holds both
// to the same semantics.
//
// Keys and values are opaque to the store.
type StatusStore interface {
	// Put stores value under key for ttl.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Get returns the value of key, or ErrNoEntry once it expired or was
	// never stored.
	Get(ctx context.Context, key string) ([]byte, error)
	// AcquirePoll takes key's poll lease, or fails with ErrHeld while
	// another holder has it. A lease whose holder dies expires.
	AcquirePoll(ctx context.Context, key string) (PollLease, error)
	// Publish sends msg to every subscriber of key (on every replica).
	// Delivery is best effort: a subscriber that was disconnected misses
	// what was published meanwhile.
	Publish(ctx context.Context, key string, msg []byte) error
	// Subscribe returns the messages published to key from now on.
	Subscribe(ctx context.Context, key string) (Subscription, error)
}

// PollLease is a poller's exclusive right to ask X for one media's status.
type PollLease interface {
	// Lost is closed when the lease is no longer the holder's (it could
	// not be renewed in time).
	Lost() <-chan struct{}
	// Release gives the lease up; it is safe to call more than once.
	Release(ctx context.Context) error
}

// Subscription receives the messages published to one key.
type Subscription interface {
	// C delivers the messages in the order they were published. A
	// subscriber that does not keep up loses messages, never blocks the
	// publisher.
	C() <-chan []byte
	// Close ends the subscription.
	Close() error
}

// DefaultStatusEntries bounds the in-process status store: beyond it the
// least recently used entries are dropped (about 200 bytes each, so some
// 20 MB at most).
const DefaultStatusEntries = 100_000

// subBuffer is how many messages a subscriber may be behind before it
// loses some.
const subBuffer = 16

// memStatus is the in-process StatusStore: a bounded LRU of values, poll
// leases and subscriptions within the process.
type memStatus struct {
	values *lru.Cache[string, memValue]

	mu    sync.Mutex
	polls map[string]*memPoll
	subs  map[string]map[*memSub]struct{}
}

type memValue struct {
	v     []byte
	until time.Time
}

// NewMemoryStatusStore returns the in-process StatusStore holding at most
// entries values (DefaultStatusEntries when entries <= 0).
func NewMemoryStatusStore(entries int) StatusStore {
	if entries <= 0 {
		entries = DefaultStatusEntries
	}
	c, err := lru.New[string, memValue](entries)
	if err != nil {
		panic(err) // only for a size <= 0, excluded above
	}
	return &memStatus{values: c, polls: map[string]*memPoll{}, subs: map[string]map[*memSub]struct{}{}}
}

func (m *memStatus) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	m.values.Add(key, memValue{v: append([]byte(nil), value...), until: time.Now().Add(ttl)})
	return nil
}

func (m *memStatus) Get(_ context.Context, key string) ([]byte, error) {
	v, ok := m.values.Get(key)
	if !ok {
		return nil, ErrNoEntry
	}
	if !time.Now().Before(v.until) {
		m.values.Remove(key)
		return nil, ErrNoEntry
	}
	return v.v, nil
}

func (m *memStatus) AcquirePoll(_ context.Context, key string) (PollLease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.polls[key] != nil {
		return nil, ErrHeld
	}
	p := &memPoll{m: m, key: key, lost: make(chan struct{})}
	m.polls[key] = p
	return p, nil
}

func (m *memStatus) Publish(_ context.Context, key string, msg []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := range m.subs[key] {
		select {
		case s.c <- append([]byte(nil), msg...):
		default: // a subscriber that does not keep up loses the message
		}
	}
	return nil
}

func (m *memStatus) Subscribe(_ context.Context, key string) (Subscription, error) {
	s := &memSub{m: m, key: key, c: make(chan []byte, subBuffer)}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.subs[key] == nil {
		m.subs[key] = map[*memSub]struct{}{}
	}
	m.subs[key][s] = struct{}{}
	return s, nil
}

type memPoll struct {
	m    *memStatus
	key  string
	lost chan struct{} // never closed: a lease in the process cannot be lost
	once sync.Once
}

func (p *memPoll) Lost() <-chan struct{} { return p.lost }

func (p *memPoll) Release(context.Context) error {
	p.once.Do(func() {
		p.m.mu.Lock()
		if p.m.polls[p.key] == p {
			delete(p.m.polls, p.key)
		}
		p.m.mu.Unlock()
	})
	return nil
}

type memSub struct {
	m    *memStatus
	key  string
	c    chan []byte
	once sync.Once
}

func (s *memSub) C() <-chan []byte { return s.c }

func (s *memSub) Close() error {
	s.once.Do(func() {
		s.m.mu.Lock()
		delete(s.m.subs[s.key], s)
		if len(s.m.subs[s.key]) == 0 {
			delete(s.m.subs, s.key)
		}
		s.m.mu.Unlock()
	})
	return nil
}
