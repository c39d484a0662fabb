// Package statustest is the conformance suite of relay.StatusStore:
// the in-process store and the Redis one run it, so that the status relay
// behaves the same on one replica and on several.
package statustest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/relay"
)

// Open returns a fresh store for one test; the suite does not close it.
type Open func(t *testing.T) relay.StatusStore

// Options say what a store can do beyond one process; the cases that need
// more are skipped.
type Options struct {
	// Peer opens another store on the same storage as s, as a second
	// replica would. Nil for a store of one process.
	Peer func(t *testing.T, s relay.StatusStore) relay.StatusStore
	// Halt stops the renewal of s's poll leases, as in a process that
	// paused or died; resume lets them renew again.
	Halt func(s relay.StatusStore) (resume func())
	// LeaseTTL is how long a poll lease outlives its last renewal.
	LeaseTTL time.Duration
}

var keys atomic.Int64

func key(t *testing.T) string { return fmt.Sprintf("%s/%d", t.Name(), keys.Add(1)) }

// recv waits for one message.
func recv(t *testing.T, sub relay.Subscription) string {
	t.Helper()
	select {
	case b := <-sub.C():
		return string(b)
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
	}
	return ""
}

// Run runs the suite.
func Run(t *testing.T, open Open, o Options) {
	ctx := context.Background()
	t.Run("put, get and expiry", func(t *testing.T) {
		s := open(t)
		k := key(t)
		if _, err := s.Get(ctx, k); !errors.Is(err, relay.ErrNoEntry) {
			t.Fatalf("Get of an unknown key: %v, want ErrNoEntry", err)
		}
		if err := s.Put(ctx, k, []byte("one"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, k, []byte("two"), 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get(ctx, k); err != nil || string(v) != "two" {
			t.Fatalf("Get = %q, %v; want the last Put", v, err)
		}
		// The value expires: Get answers ErrNoEntry within a bound of
		// the TTL (the stores expire lazily or on a timer).
		put := time.Now()
		for {
			_, err := s.Get(ctx, k)
			if errors.Is(err, relay.ErrNoEntry) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if time.Since(put) > 5*time.Second {
				t.Fatalf("Get %s past a 300ms TTL still finds the value", time.Since(put))
			}
			<-time.After(10 * time.Millisecond)
		}
	})
	t.Run("one poll lease per key", func(t *testing.T) {
		s := open(t)
		k := key(t)
		l, err := s.AcquirePoll(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AcquirePoll(ctx, k); !errors.Is(err, relay.ErrHeld) {
			t.Fatalf("second AcquirePoll: %v, want ErrHeld", err)
		}
		other, err := s.AcquirePoll(ctx, key(t))
		if err != nil {
			t.Fatalf("AcquirePoll of another key: %v", err)
		}
		_ = other.Release(ctx)
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		_ = l.Release(ctx)
		l2, err := s.AcquirePoll(ctx, k)
		if err != nil {
			t.Fatalf("AcquirePoll after Release: %v", err)
		}
		select {
		case <-l2.Lost():
			t.Fatal("a held lease reads as lost")
		default:
		}
		_ = l2.Release(ctx)
	})
	t.Run("publish and subscribe", func(t *testing.T) {
		s := open(t)
		k, other := key(t), key(t)
		sub, err := s.Subscribe(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		gone, err := s.Subscribe(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		_ = gone.Close()
		for _, m := range []string{"a", "b", "c"} {
			if err := s.Publish(ctx, k, []byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Publish(ctx, other, []byte("elsewhere")); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"a", "b", "c"} {
			if got := recv(t, sub); got != want {
				t.Fatalf("received %q, want %q (in publication order)", got, want)
			}
		}
		_ = sub.Close()
		select {
		case m, ok := <-sub.C():
			if ok {
				t.Fatalf("a message for another key or after Close: %q", m)
			}
		case <-time.After(200 * time.Millisecond):
		}
		select {
		case m := <-gone.C():
			t.Fatalf("a closed subscription received %q", m)
		default:
		}
	})
	runReplicas(t, open, o)
}

func runReplicas(t *testing.T, open Open, o Options) {
	ctx := context.Background()
	t.Run("replicas: shared values, lease and messages", func(t *testing.T) {
		if o.Peer == nil {
			t.Skip("the store belongs to one process")
		}
		a := open(t)
		b := o.Peer(t, a)
		k := key(t)
		if err := a.Put(ctx, k, []byte("SUCCEEDED"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if v, err := b.Get(ctx, k); err != nil || string(v) != "SUCCEEDED" {
			t.Fatalf("the other replica reads %q, %v", v, err)
		}
		l, err := a.AcquirePoll(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(ctx)
		if _, err := b.AcquirePoll(ctx, k); !errors.Is(err, relay.ErrHeld) {
			t.Fatalf("AcquirePoll on the other replica: %v, want ErrHeld", err)
		}
		sub, err := b.Subscribe(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		for _, m := range []string{"IN_PROGRESS 10", "IN_PROGRESS 60", "SUCCEEDED"} {
			if err := a.Publish(ctx, k, []byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []string{"IN_PROGRESS 10", "IN_PROGRESS 60", "SUCCEEDED"} {
			if got := recv(t, sub); got != want {
				t.Fatalf("the other replica received %q, want %q", got, want)
			}
		}
		_ = l.Release(ctx)
		l2, err := b.AcquirePoll(ctx, k)
		if err != nil {
			t.Fatalf("AcquirePoll on the other replica after Release: %v", err)
		}
		_ = l2.Release(ctx)
	})
	t.Run("replicas: the poll lease of a holder that stopped expires", func(t *testing.T) {
		if o.Peer == nil || o.Halt == nil {
			t.Skip("the store's poll leases cannot expire")
		}
		a := open(t)
		b := o.Peer(t, a)
		k := key(t)
		old, err := a.AcquirePoll(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		resume := o.Halt(a)
		halted := time.Now()
		var nl relay.PollLease
		for nl == nil {
			nl, err = b.AcquirePoll(ctx, k)
			if err != nil && !errors.Is(err, relay.ErrHeld) {
				t.Fatal(err)
			}
			if time.Since(halted) > 5*o.LeaseTTL {
				t.Fatalf("the poll lease is still held %s after its holder stopped (TTL %s)", time.Since(halted), o.LeaseTTL)
			}
			time.Sleep(o.LeaseTTL / 20)
		}
		defer nl.Release(ctx)
		resume()
		select {
		case <-old.Lost():
		case <-time.After(5 * o.LeaseTTL):
			t.Fatal("the holder whose poll lease expired was not told it lost it")
		}
		_ = old.Release(ctx)
		if _, err := a.AcquirePoll(ctx, k); !errors.Is(err, relay.ErrHeld) {
			t.Fatalf("the old holder's Release freed the new holder's lease: %v", err)
		}
	})
}
