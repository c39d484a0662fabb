package ledgertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/ledger"
)

// runReplicas runs the cases of several processes on one storage: a lease
// seen and taken over from another replica, and leases of a holder that
// stopped without releasing them (it died, or was paused or partitioned
// away), which expire and fence its later writes.
func runReplicas(t *testing.T, open Open, o Options) {
	ctx := context.Background()
	needPeer := func(t *testing.T) {
		if o.Peer == nil {
			t.Skip("the ledger belongs to one process: no second replica can open it")
		}
	}
	needHalt := func(t *testing.T) {
		needPeer(t)
		if o.Halt == nil {
			t.Skip("the ledger's leases cannot expire: they live in the holder's process")
		}
	}
	t.Run("replicas: held key and takeover", func(t *testing.T) {
		needPeer(t)
		a := open(t)
		b := o.Peer(t, a)
		k := key(t)
		old, _, err := a.Acquire(ctx, k, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := old.Put(ctx, entry(k)); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Get(ctx, k); err != nil || !got.Live {
			t.Fatalf("Get on the other replica while held: %v, %+v", err, got)
		}
		if _, _, err := b.Acquire(ctx, k, false); !errors.Is(err, ledger.ErrHeld) {
			t.Fatalf("Acquire on the other replica without takeover: %v, want ErrHeld", err)
		}
		go settleWhenStopped(t, old, k)
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		nl, e, err := b.Acquire(tctx, k, true)
		if err != nil {
			t.Fatalf("takeover from the other replica: %v", err)
		}
		defer nl.Release(ctx)
		if e == nil || e.Phase != ledger.PhaseInterrupted || e.Committed != 8<<20 {
			t.Fatalf("takeover read %+v, want the old holder's last state", e)
		}
		if err := old.Put(ctx, entry(k)); !errors.Is(err, ledger.ErrLeaseLost) {
			t.Fatalf("Put through the released lease: %v, want ErrLeaseLost", err)
		}
	})
	t.Run("replicas: the lease of a holder that stopped expires", func(t *testing.T) {
		needHalt(t)
		a := open(t)
		b := o.Peer(t, a)
		k := key(t)
		old, _, err := a.Acquire(ctx, k, false)
		if err != nil {
			t.Fatal(err)
		}
		first := entry(k)
		if err := old.Put(ctx, first); err != nil {
			t.Fatal(err)
		}
		resume := o.Halt(a)
		halted := time.Now()
		for {
			got, err := b.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Live {
				break
			}
			if time.Since(halted) > 5*o.LeaseTTL {
				t.Fatalf("the lease is still live %s after its holder stopped (TTL %s)", time.Since(halted), o.LeaseTTL)
			}
			time.Sleep(o.LeaseTTL / 20)
		}
		t.Logf("the lease expired %s after its holder stopped renewing (TTL %s)", time.Since(halted).Round(time.Millisecond), o.LeaseTTL)
		nl, e, err := b.Acquire(ctx, k, false)
		if err != nil {
			t.Fatalf("Acquire after the expiry: %v", err)
		}
		defer nl.Release(ctx)
		if e == nil || e.Committed != first.Committed {
			t.Fatalf("the new holder read %+v, want the stopped holder's last state", e)
		}
		progress := entry(k)
		progress.Committed = 8 << 20
		if err := nl.Put(ctx, progress); err != nil {
			t.Fatal(err)
		}
		// The old holder wakes up: its writes are fenced, and it is told.
		resume()
		stale := entry(k)
		stale.Committed = 1
		if err := old.Put(ctx, stale); !errors.Is(err, ledger.ErrLeaseLost) {
			t.Fatalf("Put of the holder whose lease expired: %v, want ErrLeaseLost", err)
		}
		select {
		case <-old.Stopped():
		case <-time.After(5 * o.LeaseTTL):
			t.Fatal("the holder whose lease expired was not stopped")
		}
		if got, err := b.Get(ctx, k); err != nil || got.Committed != 8<<20 || !got.Live {
			t.Fatalf("after the fenced Put: %v, %+v", err, got)
		}
	})
	t.Run("replicas: takeover of a holder that stopped", func(t *testing.T) {
		needHalt(t)
		a := open(t)
		b := o.Peer(t, a)
		k := key(t)
		old, _, err := a.Acquire(ctx, k, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := old.Put(ctx, entry(k)); err != nil {
			t.Fatal(err)
		}
		_ = o.Halt(a)
		tctx, cancel := context.WithTimeout(ctx, 10*o.LeaseTTL)
		defer cancel()
		nl, e, err := b.Acquire(tctx, k, true)
		if err != nil {
			t.Fatalf("takeover of a holder that no longer renews: %v", err)
		}
		defer nl.Release(ctx)
		if e == nil || e.Committed != entry(k).Committed {
			t.Fatalf("takeover read %+v", e)
		}
	})
}
