package ledgertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/ledger"
)

// RunScan holds a ledger.Scanner to its contract: every stored entry is
// reported once, with the key it is stored under, its Actions as written,
// and stopping early when fn returns false.
func RunScan(t *testing.T, open Open) {
	l := open(t)
	sc, ok := l.(ledger.Scanner)
	if !ok {
		t.Fatalf("%T is not a ledger.Scanner", l)
	}
	ctx := context.Background()
	const n = 150 // more than one batch
	base := key(t)
	want := map[string]bool{}
	for i := range n {
		k := fmt.Sprintf("%s/scoped/%d", base, i)
		lease, _, err := l.Acquire(ctx, k, false)
		if err != nil {
			t.Fatal(err)
		}
		e := entry(fmt.Sprintf("caller-key-%d", i))
		e.Expires = time.Now().Add(time.Hour)
		if i%2 == 0 {
			e.Actions = &ledger.Actions{Metadata: []byte(`{"alt_text":"x"}`), MetaSt: ledger.ActionState{Step: ledger.StepSending, Attempts: 1}}
		}
		if err := lease.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
		_ = lease.Release(ctx)
		want[k] = true
	}
	seen := map[string]bool{}
	opened := 0
	err := sc.Scan(ctx, func(k string, e *ledger.Entry) bool {
		if !want[k] {
			return true // another test's entry
		}
		if seen[k] {
			t.Errorf("%s reported twice", k)
		}
		seen[k] = true
		var i int
		if _, err := fmt.Sscanf(e.Key, "caller-key-%d", &i); err != nil || k != fmt.Sprintf("%s/scoped/%d", base, i) {
			t.Errorf("stored key %s reported with entry %s", k, e.Key)
		}
		if e.Actions.Open() {
			opened++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n || opened != n/2 {
		t.Fatalf("Scan reported %d of %d entries, %d with open actions (want %d)", len(seen), n, opened, n/2)
	}
	calls := 0
	if err := sc.Scan(ctx, func(string, *ledger.Entry) bool { calls++; return false }); err != nil || calls != 1 {
		t.Fatalf("a Scan told to stop called fn %d times (%v), want 1", calls, err)
	}
}
