package mediaops

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/ledger"
)

// counted is a ledger whose scans count the entries they hand back.
type counted struct {
	ledger.PendingScanner
	ledger.Ledger
	full, pending int
}

func (c *counted) Scan(ctx context.Context, fn func(string, *ledger.Entry) bool) error {
	return c.PendingScanner.Scan(ctx, func(k string, e *ledger.Entry) bool { c.full++; return fn(k, e) })
}

func (c *counted) ScanPending(ctx context.Context, fn func(string, *ledger.Entry) bool) error {
	return c.PendingScanner.ScanPending(ctx, func(k string, e *ledger.Entry) bool { c.pending++; return fn(k, e) })
}

// TestScanReadsPendingEntriesOnly: in a ledger of 10 000 completed uploads
// whose actions ended and one whose alt text a dead holder left PENDING,
// the scan reads that one entry through the ledger's index, and applies
// it; a full read of the same ledger hands back all 10 001.
func TestScanReadsPendingEntriesOnly(t *testing.T) {
	const done = 10_000
	x := newFakeX()
	e := newEnv(t, x, "v2")
	var wg sync.WaitGroup
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				id := fmt.Sprint(100_000 + i)
				en := &ledger.Entry{Key: "c" + id, Phase: ledger.PhaseCompleted, MediaID: id, Expires: time.Now().Add(time.Hour),
					Actions: &ledger.Actions{Metadata: []byte(`{"alt_text":"done"}`), MetaSt: ledger.ActionState{Step: ledger.StepApplied, Attempts: 1}}}
				if err := store(e.l, "k/"+id, en); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range done {
		next <- i
	}
	close(next)
	wg.Wait()
	b, _ := protojson.Marshal(&mediagwv1.MediaMetadata{AltText: ptr("left pending")})
	resp, _ := protojson.Marshal(&mediagwv1.UploadResponse{MediaId: "42", MediaKey: "7_42"})
	e.put(t, &ledger.Entry{Key: "c42", Phase: ledger.PhaseCompleted, MediaID: "42", MediaKey: "7_42", Response: resp,
		Start: ledger.Start{Category: "tweet_image"}, Expires: time.Now().Add(time.Hour),
		Actions: &ledger.Actions{Metadata: b, MetaSt: ledger.ActionState{Step: ledger.StepPending}, Account: "main"}}, "k/42")

	c := &counted{PendingScanner: e.l.(ledger.PendingScanner), Ledger: e.l}
	start := time.Now()
	e.ops.scan(c)
	took := time.Since(start)
	if c.full != 0 || c.pending != 1 {
		t.Fatalf("the scan read %d entries in full and %d through the index, want 0 and 1", c.full, c.pending)
	}
	if sets, _, _ := x.counts(); sets != 1 {
		t.Fatalf("%d metadata calls, want 1", sets)
	}
	if st := e.entry(t, "k/42").Actions.MetaSt; st.Step != ledger.StepApplied {
		t.Fatalf("state %+v, want APPLIED", st)
	}
	// Once applied, the next scan reads nothing.
	e.ops.scan(c)
	if c.pending != 1 {
		t.Fatalf("the second scan read %d entries through the index, want none", c.pending-1)
	}
	start = time.Now()
	if err := c.Scan(context.Background(), func(string, *ledger.Entry) bool { return true }); err != nil {
		t.Fatal(err)
	}
	t.Logf("the scan took %s (the apply call included); a full read of the %d entries %s", took, c.full, time.Since(start))
	if c.full != done+1 {
		t.Fatalf("a full read handed back %d entries, want %d", c.full, done+1)
	}
}

// store writes en under key through a lease of its own.
func store(l ledger.Ledger, key string, en *ledger.Entry) error {
	ctx := context.Background()
	lease, _, err := l.Acquire(ctx, key, false)
	if err != nil {
		return err
	}
	defer lease.Release(ctx)
	return lease.Put(ctx, en)
}
