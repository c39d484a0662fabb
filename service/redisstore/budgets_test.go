package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/redisstore"
	"github.com/mediagw/mediagw/service/redisstore/redistest"
)

// TestBudgets: what one replica learns of a rate-limit window is what the
// other counts against.
func TestBudgets(t *testing.T) {
	ctx := context.Background()
	p := redistest.Prefix(t)
	open := func() redisstore.Budgets {
		st, err := redisstore.Open(ctx, redistest.URL(t), redisstore.Options{Prefix: p})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st.Budgets()
	}
	a, b := open(), open()
	now := time.Now()
	take := func(bs redisstore.Budgets, key string, want bool) time.Time {
		t.Helper()
		reset, ok, err := bs.Take(ctx, key, now)
		if err != nil || ok != want {
			t.Fatalf("Take(%s) = %v, %v; want ok %v", key, ok, err, want)
		}
		return reset
	}
	// Nothing known: every request may go.
	take(a, "bearer:1|init", true)
	// a learns 2 requests are left this window; b spends them, then waits.
	reset := now.Add(time.Hour).Truncate(time.Second)
	if err := a.Observe(ctx, "bearer:1|init", 1875, 2, reset); err != nil {
		t.Fatal(err)
	}
	take(b, "bearer:1|init", true)
	take(b, "bearer:1|init", true)
	if got := take(a, "bearer:1|init", false); !got.Equal(reset) {
		t.Fatalf("used-up window resets at %v, want %v", got, reset)
	}
	// A late answer of the same window cannot give requests back.
	_ = b.Observe(ctx, "bearer:1|init", 1875, 7, reset)
	take(a, "bearer:1|init", false)
	// Another endpoint and another credential are their own windows.
	take(a, "bearer:1|append", true)
	take(a, "bearer:2|init", true)
	// The next window replaces the used-up one.
	if err := b.Observe(ctx, "bearer:1|init", 1875, 1, reset.Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	take(a, "bearer:1|init", true)
	take(a, "bearer:1|init", false)
	// A 429 on a replica empties the window until its reset for all.
	soon := now.Add(30 * time.Minute)
	if err := a.Exhaust(ctx, "bearer:3|status", soon); err != nil {
		t.Fatal(err)
	}
	if got := take(b, "bearer:3|status", false); !got.Equal(soon.Truncate(time.Millisecond)) {
		t.Fatalf("after a 429 the window resets at %v, want %v", got, soon)
	}
	// Once the reset has passed, nothing is known again.
	if _, ok, err := b.Take(ctx, "bearer:3|status", soon.Add(time.Second)); err != nil || !ok {
		t.Fatalf("Take after the reset: %v %v", ok, err)
	}
}
