package redisstore_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/ledger"
	"github.com/mediagw/mediagw/service/ledger/ledgertest"
	"github.com/mediagw/mediagw/service/redisstore"
	"github.com/mediagw/mediagw/service/redisstore/redistest"
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
