// Package ledgertest is the conformance suite of ledger.Ledger: every
// implementation (the embedded bbolt file, Redis) runs it, so that they
// keep the same semantics.
package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/ledger"
)

// Open returns a fresh, empty ledger for one test; the suite closes it.
type Open func(t *testing.T) ledger.Ledger

var keys atomic.Int64

// key returns a key no other test of the process uses.
func key(t *testing.T) string {
	return fmt.Sprintf("u/%s-%d", t.Name(), keys.Add(1))
}

func entry(k string) *ledger.Entry {
	now := time.Now().UTC().Truncate(time.Millisecond)
	e := &ledger.Entry{
		Key: k, Phase: ledger.PhaseReceiving,
		Start: ledger.Start{MediaType: "video/mp4", Category: "tweet_video", TotalBytes: 10 << 20,
			AdditionalOwners: []string{"1", "2"}, Shared: true, SHA256: "ab", Account: "main"},
		MediaID: "1912475018862166016", MediaKey: "7_1912475018862166016", Expires: now.Add(time.Hour),
		SegmentSize: 4 << 20, Segments: 6, Committed: 4 << 20, HashState: []byte{1, 2, 3},
		Plan:  []ledger.Run{{From: 0, Size: 4 << 20}, {From: 1, Size: 2 << 20}},
		Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Created: now, Updated: now,
		Verdict: &ledger.Verdict{Inspection: []byte(`{"format":"mp4"}`), Enforced: true,
			Violations: []ledger.Violation{{Reason: "VIDEO_TOO_LONG", Field: "duration", Limit: "140s", Actual: "150s", Description: "Trim it."}}},
	}
	e.Acked = []byte{0b101}
	return e
}

// Options say what an implementation can do beyond one process; the
// cases that need more than it can do are skipped.
type Options struct {
	// Peer opens another ledger on the same storage as l, as a second
	// replica would. Nil for a ledger one process owns.
	Peer func(t *testing.T, l ledger.Ledger) ledger.Ledger
	// Halt stops the renewal of l's leases, as in a process that paused or
	// died without releasing them; resume lets them renew again. Nil for
	// leases that cannot expire.
	Halt func(l ledger.Ledger) (resume func())
	// LeaseTTL is how long a lease outlives its last renewal (with Halt).
	LeaseTTL time.Duration
}

// Run runs the suite against the ledgers open returns.
func Run(t *testing.T, open Open) { RunWith(t, open, Options{}) }

// RunWith runs the suite, with the cases across replicas that o allows.
func RunWith(t *testing.T, open Open, o Options) {
	ctx := context.Background()
	runReplicas(t, open, o)
	t.Run("unknown key", func(t *testing.T) {
		l := open(t)
		if _, err := l.Get(ctx, key(t)); !errors.Is(err, ledger.ErrNoEntry) {
			t.Fatalf("Get of an unknown key: %v, want ErrNoEntry", err)
		}
	})
	t.Run("round trip and liveness", func(t *testing.T) {
		l := open(t)
		k := key(t)
		lease, e, err := l.Acquire(ctx, k, false)
		if err != nil || e != nil {
			t.Fatalf("Acquire of a new key: %v, entry %v", err, e)
		}
		want := entry(k)
		if err := lease.Put(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := l.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Live {
			t.Fatal("Get while the lease is held: Live is false")
		}
		got.Live = false
		if !reflect.DeepEqual(normal(got), normal(want)) {
			t.Fatalf("stored %+v\nread   %+v", want, got)
		}
		if err := lease.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := lease.Release(ctx); err != nil {
			t.Fatalf("second Release: %v", err)
		}
		got, err = l.Get(ctx, k)
		if err != nil || got.Live {
			t.Fatalf("Get after Release: %v, Live %v", err, got != nil && got.Live)
		}
		// A new holder reads what the last one stored.
		lease, e, err = l.Acquire(ctx, k, false)
		if err != nil || e == nil || e.Committed != want.Committed {
			t.Fatalf("Acquire after Release: %v, entry %+v", err, e)
		}
		_ = lease.Release(ctx)
	})
	t.Run("held key", func(t *testing.T) {
		l := open(t)
		k := key(t)
		lease, _, err := l.Acquire(ctx, k, false)
		if err != nil {
			t.Fatal(err)
		}
		defer lease.Release(ctx)
		if _, _, err := l.Acquire(ctx, k, false); !errors.Is(err, ledger.ErrHeld) {
			t.Fatalf("second Acquire without takeover: %v, want ErrHeld", err)
		}
		select {
		case <-lease.Stopped():
			t.Fatal("an Acquire without takeover stopped the holder")
		default:
		}
	})
	t.Run("takeover and fencing", func(t *testing.T) {
		l := open(t)
		k := key(t)
		old, _, err := l.Acquire(ctx, k, false)
		if err != nil {
			t.Fatal(err)
		}
		first := entry(k)
		if err := old.Put(ctx, first); err != nil {
			t.Fatal(err)
		}
		// The holder stops when asked and stores its last state.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			settleWhenStopped(t, old, k)
		}()
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		nl, e, err := l.Acquire(tctx, k, true)
		if err != nil {
			t.Fatalf("takeover: %v", err)
		}
		wg.Wait()
		if e == nil || e.Phase != ledger.PhaseInterrupted || e.Committed != 8<<20 {
			t.Fatalf("takeover read %+v, want the old holder's last state", e)
		}
		// The old lease can no longer write.
		stale := entry(k)
		stale.Committed = 1
		if err := old.Put(ctx, stale); !errors.Is(err, ledger.ErrLeaseLost) {
			t.Fatalf("Put through the old lease: %v, want ErrLeaseLost", err)
		}
		got, err := l.Get(ctx, k)
		if err != nil || got.Committed != 8<<20 {
			t.Fatalf("after the fenced Put: %v, committed %d", err, got.Committed)
		}
		if err := nl.Put(ctx, entry(k)); err != nil {
			t.Fatalf("the new holder's Put: %v", err)
		}
		_ = nl.Release(ctx)
	})
	t.Run("takeover waits for the holder", func(t *testing.T) {
		l := open(t)
		k := key(t)
		held, _, err := l.Acquire(ctx, k, false)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Release(ctx)
		tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if _, _, err := l.Acquire(tctx, k, true); err == nil {
			t.Fatal("takeover of a holder that never releases succeeded")
		}
		select {
		case <-held.Stopped():
		default:
			t.Fatal("takeover did not ask the holder to stop")
		}
	})
	t.Run("sweep", func(t *testing.T) {
		l := open(t)
		old, live, fresh := key(t), key(t), key(t)
		for _, k := range []string{old, live, fresh} {
			lease, _, err := l.Acquire(ctx, k, false)
			if err != nil {
				t.Fatal(err)
			}
			e := entry(k)
			if k != fresh {
				e.Expires = time.Now().Add(-time.Minute)
			}
			if err := lease.Put(ctx, e); err != nil {
				t.Fatal(err)
			}
			if k == live {
				defer lease.Release(ctx)
				continue
			}
			_ = lease.Release(ctx)
		}
		n, err := l.Sweep(ctx, time.Now())
		if err != nil || n != 1 {
			t.Fatalf("Sweep: %d removed, %v; want 1", n, err)
		}
		if _, err := l.Get(ctx, old); !errors.Is(err, ledger.ErrNoEntry) {
			t.Fatalf("expired entry after Sweep: %v", err)
		}
		for _, k := range []string{live, fresh} {
			if _, err := l.Get(ctx, k); err != nil {
				t.Fatalf("%s after Sweep: %v", k, err)
			}
		}
	})
	t.Run("many keys at once", func(t *testing.T) {
		l := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := fmt.Sprintf("%s-%d", key(t), i)
				lease, _, err := l.Acquire(ctx, k, false)
				if err != nil {
					errs <- err
					return
				}
				defer lease.Release(ctx)
				for c := range int64(5) {
					e := entry(k)
					e.Committed = c
					if err := lease.Put(ctx, e); err != nil {
						errs <- err
						return
					}
				}
				if got, err := l.Get(ctx, k); err != nil || got.Committed != 4 {
					errs <- fmt.Errorf("%s: %v, committed %v", k, err, got)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// settleWhenStopped plays a holder asked to stop: it stores its last
// state (INTERRUPTED at 8 MiB) and releases.
func settleWhenStopped(t *testing.T, l ledger.Lease, k string) {
	<-l.Stopped()
	last := entry(k)
	last.Phase, last.Committed = ledger.PhaseInterrupted, 8<<20
	if err := l.Put(context.Background(), last); err != nil {
		t.Errorf("the stopping holder's last Put: %v", err)
	}
	_ = l.Release(context.Background())
}

// normal makes entries comparable: times in UTC, empty slices nil.
func normal(e *ledger.Entry) ledger.Entry {
	c := *e
	c.Expires, c.Created, c.Updated = c.Expires.UTC(), c.Created.UTC(), c.Updated.UTC()
	return c
}
