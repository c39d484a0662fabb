package redisstore_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/ledger"
	"github.com/mediagw/mediagw/service/ledger/ledgertest"
	"github.com/mediagw/mediagw/service/redisstore"
	"github.com/mediagw/mediagw/service/redisstore/redistest"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

const leaseTTL = 600 * time.Millisecond

// stores opens Stores on the test Redis and remembers which Store each
// ledger belongs to and with which prefix.
type stores struct {
	mu     sync.Mutex
	of     map[ledger.Ledger]*redisstore.Store
	prefix map[ledger.Ledger]string
}

func (s *stores) open(t *testing.T, prefix string) *redisstore.Store {
	t.Helper()
	st, err := redisstore.Open(context.Background(), redistest.URL(t), redisstore.Options{Prefix: prefix, LeaseTTL: leaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s.mu.Lock()
	defer s.mu.Unlock()
	s.of[st.Ledger()], s.prefix[st.Ledger()] = st, prefix
	return st
}

func TestLedgerConformance(t *testing.T) {
	s := &stores{of: map[ledger.Ledger]*redisstore.Store{}, prefix: map[ledger.Ledger]string{}}
	ledgertest.RunWith(t, func(t *testing.T) ledger.Ledger {
		return s.open(t, redistest.Prefix(t)).Ledger()
	}, ledgertest.Options{
		Peer: func(t *testing.T, l ledger.Ledger) ledger.Ledger {
			s.mu.Lock()
			p := s.prefix[l]
			s.mu.Unlock()
			return s.open(t, p).Ledger()
		},
		Halt: func(l ledger.Ledger) func() {
			s.mu.Lock()
			st := s.of[l]
			s.mu.Unlock()
			return redisstore.Halt(st)
		},
		LeaseTTL: leaseTTL,
	})
}

// TestEveryKeyHasATTL: whatever mediagw writes to Redis expires by itself
// (a noeviction Redis must not fill up with what no sweep removed).
func TestEveryKeyHasATTL(t *testing.T) {
	prefix := redistest.Prefix(t)
	st, err := redisstore.Open(context.Background(), redistest.URL(t), redisstore.Options{Prefix: prefix, LeaseTTL: leaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for i, exp := range []time.Time{{}, time.Now().Add(time.Hour)} {
		key := fmt.Sprintf("k%d", i)
		lease, _, err := st.Ledger().Acquire(ctx, key, false)
		if err != nil {
			t.Fatal(err)
		}
		// Completed with metadata to set: the index of pending actions too.
		e := &ledger.Entry{Key: key, Phase: ledger.PhaseCompleted, Expires: exp,
			Actions: &ledger.Actions{Metadata: []byte(`{"alt_text":"x"}`), MetaSt: ledger.ActionState{Step: ledger.StepPending}}}
		if err := lease.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
		_ = lease.Release(ctx)
	}
	if err := st.Status().Put(ctx, "known/x/1", []byte("{}"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.Status().PutOwner(ctx, "1", "svc", []byte("{}"), time.Hour); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
	defer rdb.Close()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(keys, prefix+"ledger-pending") {
		t.Errorf("no index of pending actions among %v", keys)
	}
	if len(keys) < 4 {
		t.Fatalf("only %d keys under %s: %v", len(keys), prefix, keys)
	}
	for _, k := range keys {
		if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl < 0 {
			t.Errorf("key %s has no TTL (%v, %v)", k, ttl, err)
		}
	}
}
