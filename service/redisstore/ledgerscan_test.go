package redisstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mediagw/mediagw/service/ledger"
	"github.com/mediagw/mediagw/service/ledger/ledgertest"
	"github.com/mediagw/mediagw/service/redisstore"
	"github.com/mediagw/mediagw/service/redisstore/redistest"
)

func TestLedgerScan(t *testing.T) {
	ledgertest.RunScan(t, func(t *testing.T) ledger.Ledger {
		st, err := redisstore.Open(context.Background(), redistest.URL(t), redisstore.Options{Prefix: "scan-" + t.Name() + ":", LeaseTTL: leaseTTL})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st.Ledger()
	})
}

// openAt opens a Store on the test Redis with prefix.
func openAt(t testing.TB, prefix string) *redisstore.Store {
	t.Helper()
	st, err := redisstore.Open(context.Background(), redistest.URL(t), redisstore.Options{Prefix: prefix, LeaseTTL: leaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestLedgerPending(t *testing.T) {
	ledgertest.RunPending(t, func(t *testing.T) ledger.Ledger { return openAt(t, redistest.Prefix(t)).Ledger() })
}

// pendingEntry is a completed upload whose alt text is still to set.
func pendingEntry(key string) *ledger.Entry {
	return &ledger.Entry{Key: key, Phase: ledger.PhaseCompleted, MediaID: "1", Expires: time.Now().Add(time.Hour),
		Actions: &ledger.Actions{Metadata: []byte(`{"alt_text":"x"}`), MetaSt: ledger.ActionState{Step: ledger.StepPending}}}
}

func putEntry(t *testing.T, l ledger.Ledger, k string, e *ledger.Entry) {
	t.Helper()
	ctx := context.Background()
	lease, _, err := l.Acquire(ctx, k, false)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(ctx)
	if err := lease.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
}

func pendingKeys(t *testing.T, ps ledger.PendingScanner) []string {
	t.Helper()
	var ks []string
	if err := ps.ScanPending(context.Background(), func(k string, _ *ledger.Entry) bool { ks = append(ks, k); return true }); err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestPendingIndexedForOldRedis: entries a mediagw without the index
// stored (no ledger-pending set; an entry without a TTL, as the oldest
// kept them) are listed by a Store's first ScanPending, and indexed with a
// TTL.
func TestPendingIndexedForOldRedis(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
	defer rdb.Close()
	exp := time.Now().Add(time.Hour)
	applied := pendingEntry("applied")
	applied.Actions.MetaSt.Step = ledger.StepApplied
	for k, e := range map[string]*ledger.Entry{"old": pendingEntry("old"), "untimed": pendingEntry("untimed"), "applied": applied} {
		v, _ := json.Marshal(e)
		ttl := 2 * time.Hour
		if k == "untimed" {
			ttl = 0
		}
		if err := rdb.Set(ctx, prefix+"ledger:"+k, v, ttl).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.ZAdd(ctx, prefix+"ledger-expires", redis.Z{Score: float64(exp.UnixMilli()), Member: k}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	defer rdb.Del(ctx, prefix+"ledger:untimed")
	if err := rdb.Expire(ctx, prefix+"ledger-expires", 2*time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	l := openAt(t, prefix).Ledger()
	if got := pendingKeys(t, l); len(got) != 2 || !(got[0] == "old" && got[1] == "untimed" || got[0] == "untimed" && got[1] == "old") {
		t.Fatalf("the first ScanPending lists %v, want old and untimed", got)
	}
	members, err := rdb.ZRange(ctx, prefix+"ledger-pending", 0, -1).Result()
	if err != nil || len(members) != 2 {
		t.Fatalf("the index holds %v (%v), want old and untimed", members, err)
	}
	if ttl, err := rdb.PTTL(ctx, prefix+"ledger-pending").Result(); err != nil || ttl <= 0 {
		t.Fatalf("the index's TTL: %v, %v", ttl, err)
	}
	// Another replica, started later, reads the index as built.
	if got := pendingKeys(t, openAt(t, prefix).Ledger()); len(got) != 2 {
		t.Fatalf("a second Store lists %v, want 2 entries", got)
	}
}

// TestPendingSkipsStaleMembers: a member whose entry expired by its TTL,
// or whose entry an older mediagw rewrote without touching the index, is
// skipped and taken out; a member whose entry is pending stays.
func TestPendingSkipsStaleMembers(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	l := openAt(t, prefix).Ledger()
	for _, k := range []string{"gone", "rewritten", "pending"} {
		putEntry(t, l, k, pendingEntry(k))
	}
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
	defer rdb.Close()
	if err := rdb.Del(ctx, prefix+"ledger:gone").Err(); err != nil { // as its TTL would
		t.Fatal(err)
	}
	done := pendingEntry("rewritten")
	done.Actions.MetaSt.Step = ledger.StepApplied
	v, _ := json.Marshal(done)
	if err := rdb.Set(ctx, prefix+"ledger:rewritten", v, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if got := pendingKeys(t, l); len(got) != 1 || got[0] != "pending" {
		t.Fatalf("ScanPending lists %v, want [pending]", got)
	}
	members, err := rdb.ZRange(ctx, prefix+"ledger-pending", 0, -1).Result()
	if err != nil || len(members) != 1 || members[0] != "pending" {
		t.Fatalf("the index holds %v (%v) after the scan, want [pending]", members, err)
	}
}

// BenchmarkScan: the actions scan's read of a ledger of 100 000 completed
// uploads, one with pending actions, in full and through the index.
func BenchmarkScan(b *testing.B) {
	ledgertest.BenchScan(b, openAt(b, redistest.Prefix(b)).Ledger(), 100_000)
}
