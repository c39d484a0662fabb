package boltledger_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/ledger"
	"github.com/mediagw/mediagw/service/ledger/boltledger"
	"github.com/mediagw/mediagw/service/ledger/ledgertest"
)

func TestConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledger.Ledger {
		l, err := boltledger.Open(filepath.Join(t.TempDir(), "ledger.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		return l
	})
}

// TestReopenInterrupts: what a stopped process left receiving or
// finalizing is interrupted when the file is opened again; finished
// entries stay as they were.
func TestReopenInterrupts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state", "mediagw", "ledger.db")
	l, err := boltledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for k, ph := range map[string]ledger.Phase{"u/a": ledger.PhaseReceiving, "u/b": ledger.PhaseFinalizing, "u/c": ledger.PhaseCompleted} {
		lease, _, err := l.Acquire(ctx, k, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := lease.Put(ctx, &ledger.Entry{Key: k, Phase: ph, Committed: 42, Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		// Not released: the process "dies" holding the leases.
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = boltledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for k, want := range map[string]ledger.Phase{"u/a": ledger.PhaseInterrupted, "u/b": ledger.PhaseInterrupted, "u/c": ledger.PhaseCompleted} {
		e, err := l.Get(ctx, k)
		if err != nil || e.Phase != want || e.Committed != 42 || e.Live {
			t.Fatalf("%s after reopening: %v %+v, want %s", k, err, e, want)
		}
	}
}

// TestSecondProcessFailsAtOnce: the file is locked by its first opener; a
// second opener fails within about a second, naming the file.
func TestSecondProcessFailsAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := boltledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	_, err = boltledger.Open(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second Open took %s", d)
	}
}

// TestCorruptFileIsRefused: a file that is not a ledger stops Open with a
// message naming it.
func TestCorruptFileIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a bbolt file ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := boltledger.Open(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a readable ledger") {
		t.Fatalf("Open of a corrupt file: %v", err)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/lib/x")
	if p, err := boltledger.DefaultPath(); err != nil || p != "/var/lib/x/mediagw/ledger.db" {
		t.Fatalf("with XDG_STATE_HOME: %q %v", p, err)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if p, err := boltledger.DefaultPath(); err != nil || p != "/home/u/.local/state/mediagw/ledger.db" {
		t.Fatalf("with HOME: %q %v", p, err)
	}
}
