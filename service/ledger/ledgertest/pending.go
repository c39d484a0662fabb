package ledgertest

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/ledger"
)

// RunPending holds a ledger.PendingScanner to its contract: ScanPending
// lists exactly the entries whose actions are pending (a completed upload
// with a PENDING or SENDING action), each once under the key it is stored
// under; an entry leaves the list once its actions are applied or failed,
// or it is swept, and comes back when a write makes them pending again.
func RunPending(t *testing.T, open Open) {
	ctx := context.Background()
	scanner := func(t *testing.T) (ledger.Ledger, ledger.PendingScanner) {
		l := open(t)
		ps, ok := l.(ledger.PendingScanner)
		if !ok {
			t.Fatalf("%T is not a ledger.PendingScanner", l)
		}
		return l, ps
	}
	t.Run("pending entries and no others", func(t *testing.T) {
		l, ps := scanner(t)
		base := key(t)
		want := map[string]*ledger.Entry{}
		const n = 20 * 7 // every kind 20 times; more than one batch
		for i := range n {
			k := fmt.Sprintf("%s/scoped/%d", base, i)
			e := kind(i%len(kinds), fmt.Sprintf("caller-key-%d", i))
			put(t, l, k, e)
			if e.ActionsPending() {
				want[k] = e
			}
		}
		got := pendingOf(t, ps)
		if len(want) != n*2/len(kinds) {
			t.Fatalf("the case stores %d pending entries, want %d", len(want), n*2/len(kinds))
		}
		if !reflect.DeepEqual(keysOf(got), keysOf(want)) {
			t.Fatalf("ScanPending listed %v\nwant %v", keysOf(got), keysOf(want))
		}
		for k, e := range got {
			if !reflect.DeepEqual(e.Actions, want[k].Actions) || e.Key != want[k].Key {
				t.Fatalf("%s listed as %+v, stored %+v", k, e, want[k])
			}
		}
		// What a full Scan finds pending is what ScanPending lists.
		full := map[string]*ledger.Entry{}
		if err := ps.Scan(ctx, func(k string, e *ledger.Entry) bool {
			if e.ActionsPending() {
				full[k] = e
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(keysOf(full), keysOf(got)) {
			t.Fatalf("Scan finds %v pending, ScanPending lists %v", keysOf(full), keysOf(got))
		}
	})
	t.Run("leaves once applied or failed, back once pending", func(t *testing.T) {
		l, ps := scanner(t)
		a, b := key(t), key(t)
		put(t, l, a, kind(0, a))
		put(t, l, b, kind(1, b))
		if got := keysOf(pendingOf(t, ps)); !reflect.DeepEqual(got, sorted(a, b)) {
			t.Fatalf("listed %v, want %v", got, sorted(a, b))
		}
		applied := kind(0, a)
		applied.Actions.MetaSt = ledger.ActionState{Step: ledger.StepApplied, Attempts: 1}
		put(t, l, a, applied)
		failed := kind(1, b)
		failed.Actions.Subtitles[0].State = ledger.ActionState{Step: ledger.StepFailed, Error: &ledger.Error{Code: "INVALID_ARGUMENT", Message: "no"}}
		put(t, l, b, failed)
		if got := pendingOf(t, ps); len(got) != 0 {
			t.Fatalf("listed %v after the actions ended, want none", keysOf(got))
		}
		// A holder found the outcome open again and recorded SENDING.
		again := kind(0, a)
		again.Actions.MetaSt = ledger.ActionState{Step: ledger.StepSending, Attempts: 2}
		put(t, l, a, again)
		if got := pendingOf(t, ps); !reflect.DeepEqual(keysOf(got), []string{a}) || got[a].Actions.MetaSt.Attempts != 2 {
			t.Fatalf("listed %v, want %s as written last", keysOf(got), a)
		}
	})
	t.Run("held entries are listed", func(t *testing.T) {
		l, ps := scanner(t)
		k := key(t)
		lease, _, err := l.Acquire(ctx, k, false)
		if err != nil {
			t.Fatal(err)
		}
		defer lease.Release(ctx)
		if err := lease.Put(ctx, kind(0, k)); err != nil {
			t.Fatal(err)
		}
		if got := keysOf(pendingOf(t, ps)); !reflect.DeepEqual(got, []string{k}) {
			t.Fatalf("listed %v while held, want %s", got, k)
		}
	})
	t.Run("swept entries leave", func(t *testing.T) {
		l, ps := scanner(t)
		old, fresh := key(t), key(t)
		e := kind(0, old)
		e.Expires = time.Now().Add(-time.Minute)
		put(t, l, old, e)
		put(t, l, fresh, kind(0, fresh))
		if got := keysOf(pendingOf(t, ps)); !reflect.DeepEqual(got, sorted(old, fresh)) {
			t.Fatalf("listed %v before the sweep, want both", got)
		}
		if n, err := l.Sweep(ctx, time.Now()); err != nil || n != 1 {
			t.Fatalf("Sweep: %d, %v; want 1", n, err)
		}
		if got := keysOf(pendingOf(t, ps)); !reflect.DeepEqual(got, []string{fresh}) {
			t.Fatalf("listed %v after the sweep, want %s", got, fresh)
		}
	})
	t.Run("stops when told", func(t *testing.T) {
		l, ps := scanner(t)
		for range 3 {
			k := key(t)
			put(t, l, k, kind(0, k))
		}
		calls := 0
		if err := ps.ScanPending(ctx, func(string, *ledger.Entry) bool { calls++; return false }); err != nil || calls != 1 {
			t.Fatalf("a ScanPending told to stop called fn %d times (%v), want 1", calls, err)
		}
	})
}

// kinds are the entries the pending cases store: two with pending
// actions, then others whose actions are not (or no longer) pending.
var kinds = []func(e *ledger.Entry){
	func(e *ledger.Entry) { // metadata to set
		e.Actions = &ledger.Actions{Metadata: []byte(`{"alt_text":"x"}`), MetaSt: ledger.ActionState{Step: ledger.StepPending}, Account: "main"}
	},
	func(e *ledger.Entry) { // subtitles whose call's outcome is open
		e.Actions = &ledger.Actions{Subtitles: []ledger.SubtitlesAction{{MediaID: "9", LanguageCode: "EN", State: ledger.ActionState{Step: ledger.StepSending, Attempts: 1}}}}
	},
	func(e *ledger.Entry) { // applied
		e.Actions = &ledger.Actions{Metadata: []byte(`{"alt_text":"x"}`), MetaSt: ledger.ActionState{Step: ledger.StepApplied, Attempts: 1}}
	},
	func(e *ledger.Entry) { // failed
		e.Actions = &ledger.Actions{Subtitles: []ledger.SubtitlesAction{{MediaID: "9", LanguageCode: "EN", State: ledger.ActionState{Step: ledger.StepFailed}}}}
	},
	func(*ledger.Entry) {}, // no actions
	func(e *ledger.Entry) { // still receiving: nothing to apply them to yet
		e.Phase = ledger.PhaseReceiving
		e.Actions = &ledger.Actions{Metadata: []byte(`{"alt_text":"x"}`), MetaSt: ledger.ActionState{Step: ledger.StepPending}}
	},
	func(e *ledger.Entry) { // the upload failed
		e.Phase = ledger.PhaseFailed
		e.Actions = &ledger.Actions{Metadata: []byte(`{"alt_text":"x"}`), MetaSt: ledger.ActionState{Step: ledger.StepPending}}
	},
}

// kind returns a completed entry of kinds[i] with caller key k.
func kind(i int, k string) *ledger.Entry {
	e := entry(k)
	e.Phase, e.Response = ledger.PhaseCompleted, []byte(`{"media_id":"1912475018862166016"}`)
	kinds[i](e)
	return e
}

// put stores e under key k through a lease of its own.
func put(t testing.TB, l ledger.Ledger, k string, e *ledger.Entry) {
	t.Helper()
	if err := store(l, k, e); err != nil {
		t.Fatal(err)
	}
}

func store(l ledger.Ledger, k string, e *ledger.Entry) error {
	ctx := context.Background()
	lease, _, err := l.Acquire(ctx, k, false)
	if err != nil {
		return err
	}
	defer lease.Release(ctx)
	return lease.Put(ctx, e)
}

// pendingOf is what ScanPending lists, by stored key; a key listed twice
// fails t.
func pendingOf(t *testing.T, ps ledger.PendingScanner) map[string]*ledger.Entry {
	t.Helper()
	got := map[string]*ledger.Entry{}
	err := ps.ScanPending(context.Background(), func(k string, e *ledger.Entry) bool {
		if got[k] != nil {
			t.Errorf("%s listed twice", k)
		}
		got[k] = e
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func keysOf(m map[string]*ledger.Entry) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sorted(ks ...string) []string {
	sort.Strings(ks)
	return ks
}
