package redisstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/mediagw/mediagw/service/redisstore"
	"github.com/mediagw/mediagw/service/redisstore/redistest"
	"github.com/mediagw/mediagw/service/relay"
	"github.com/mediagw/mediagw/service/relay/statustest"
)

func TestStatusConformance(t *testing.T) {
	var mu sync.Mutex
	of := map[relay.StatusStore]*redisstore.Store{}
	prefix := map[relay.StatusStore]string{}
	open := func(t *testing.T, p string) relay.StatusStore {
		st, err := redisstore.Open(context.Background(), redistest.URL(t), redisstore.Options{Prefix: p, LeaseTTL: leaseTTL})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		mu.Lock()
		defer mu.Unlock()
		of[st.Status()], prefix[st.Status()] = st, p
		return st.Status()
	}
	statustest.Run(t, func(t *testing.T) relay.StatusStore { return open(t, redistest.Prefix(t)) }, statustest.Options{
		Peer: func(t *testing.T, s relay.StatusStore) relay.StatusStore {
			mu.Lock()
			p := prefix[s]
			mu.Unlock()
			return open(t, p)
		},
		Halt: func(s relay.StatusStore) func() {
			mu.Lock()
			defer mu.Unlock()
			return redisstore.Halt(of[s])
		},
		LeaseTTL: leaseTTL,
	})
}
