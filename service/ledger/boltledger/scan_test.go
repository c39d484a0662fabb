package boltledger_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/service/ledger"
	"github.com/mediagw/mediagw/service/ledger/boltledger"
	"github.com/mediagw/mediagw/service/ledger/ledgertest"
)

func open(t testing.TB) *boltledger.Ledger {
	l, err := boltledger.Open(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestScan(t *testing.T) {
	ledgertest.RunScan(t, func(t *testing.T) ledger.Ledger { return open(t) })
}

func TestPending(t *testing.T) {
	ledgertest.RunPending(t, func(t *testing.T) ledger.Ledger { return open(t) })
}

// pendingEntry is a completed upload whose alt text is still to set.
func pendingEntry(key string) *ledger.Entry {
	return &ledger.Entry{Key: key, Phase: ledger.PhaseCompleted, MediaID: "1", Expires: time.Now().Add(time.Hour),
		Actions: &ledger.Actions{Metadata: []byte(`{"alt_text":"x"}`), MetaSt: ledger.ActionState{Step: ledger.StepPending}}}
}

// TestPendingIndexBuiltAtOpen: a file written before the index existed
// (its entries bucket only) lists its pending entries once opened, and an
// index that disagrees with the entries is built anew.
func TestPendingIndexBuiltAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	applied := pendingEntry("u/applied")
	applied.Actions.MetaSt.Step = ledger.StepApplied
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("uploads"))
		if err != nil {
			return err
		}
		for k, e := range map[string]*ledger.Entry{"u/old": pendingEntry("u/old"), "u/applied": applied} {
			v, _ := json.Marshal(e)
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := boltledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := pending(t, l); len(got) != 1 || got[0] != "u/old" {
		t.Fatalf("the old file lists %v, want [u/old]", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// An older mediagw applied the action without touching the index.
	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := pendingEntry("u/old")
	done.Actions.MetaSt.Step = ledger.StepApplied
	err = db.Update(func(tx *bolt.Tx) error {
		v, _ := json.Marshal(done)
		return tx.Bucket([]byte("uploads")).Put([]byte("u/old"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	l, err = boltledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := pending(t, l); len(got) != 0 {
		t.Fatalf("after reopening lists %v, want none", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket([]byte("uploads-pending")).Stats().KeyN; n != 0 {
			t.Errorf("the index holds %d keys after reopening, want 0", n)
		}
		return nil
	})
}

func pending(t *testing.T, l *boltledger.Ledger) []string {
	t.Helper()
	var ks []string
	if err := l.ScanPending(context.Background(), func(k string, _ *ledger.Entry) bool { ks = append(ks, k); return true }); err != nil {
		t.Fatal(err)
	}
	return ks
}

// BenchmarkScan: the actions scan's read of a ledger of 100 000 completed
// uploads, one with pending actions, in full and through the index.
func BenchmarkScan(b *testing.B) {
	ledgertest.BenchScan(b, open(b), 100_000)
}
