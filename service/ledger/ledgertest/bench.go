package ledgertest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/ledger"
)

// BenchScan measures what finding the pending actions costs in a ledger
// of n completed entries of which one has pending actions: "full" reads
// every entry (Scan, as the actions scan did before the index), "pending"
// reads the index (ScanPending). Each reports the entries it handed back
// per pass (entries/op). The first ScanPending, which may index what the
// store held before (Redis: once per Store), runs before and is logged.
func BenchScan(b *testing.B, l ledger.Ledger, n int) {
	ps, ok := l.(ledger.PendingScanner)
	if !ok {
		b.Fatalf("%T is not a ledger.PendingScanner", l)
	}
	fill(b, l, n)
	ctx := context.Background()
	pass := func(b *testing.B, scan func(context.Context, func(string, *ledger.Entry) bool) error) {
		read, found := 0, 0
		for b.Loop() {
			if err := scan(ctx, func(_ string, e *ledger.Entry) bool {
				read++
				if e.ActionsPending() {
					found++
				}
				return true
			}); err != nil {
				b.Fatal(err)
			}
		}
		if found != b.N {
			b.Fatalf("%d pending entries found in %d passes, want 1 a pass", found, b.N)
		}
		b.ReportMetric(float64(read)/float64(b.N), "entries/op")
	}
	start := time.Now()
	if err := ps.ScanPending(ctx, func(string, *ledger.Entry) bool { return true }); err != nil {
		b.Fatal(err)
	}
	b.Logf("the first ScanPending took %s", time.Since(start))
	b.Run(fmt.Sprintf("entries=%d/full", n+1), func(b *testing.B) { pass(b, ps.Scan) })
	b.Run(fmt.Sprintf("entries=%d/pending", n+1), func(b *testing.B) { pass(b, ps.ScanPending) })
}

// fill stores n completed entries whose actions were applied and one whose
// metadata is pending, from 32 writers at once.
func fill(b *testing.B, l ledger.Ledger, n int) {
	b.Helper()
	base := fmt.Sprintf("bench/%s-%d", b.Name(), keys.Add(1))
	next := make(chan int)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range next {
				k := fmt.Sprintf("%s/%d", base, i)
				e := kind(2, k) // applied
				if i == n {
					e = kind(0, k)
				}
				if err := store(l, k, e); err != nil {
					errs <- err
					for range next {
					}
					return
				}
			}
		})
	}
	for i := range n + 1 {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}
