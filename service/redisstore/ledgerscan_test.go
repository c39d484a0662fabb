package redisstore_test

import (
	"context"
	"testing"

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
