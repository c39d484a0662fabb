package boltledger_test

import (
	"path/filepath"
	"testing"

	"github.com/mediagw/mediagw/service/ledger"
	"github.com/mediagw/mediagw/service/ledger/boltledger"
	"github.com/mediagw/mediagw/service/ledger/ledgertest"
)

func TestScan(t *testing.T) {
	ledgertest.RunScan(t, func(t *testing.T) ledger.Ledger {
		l, err := boltledger.Open(filepath.Join(t.TempDir(), "ledger.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		return l
	})
}
