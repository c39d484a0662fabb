package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// clock is a settable time for the policy.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func quotaPolicies(t *testing.T, r CallerPolicy) (*Policies, *clock) {
	t.Helper()
	ps := New(false)
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 30, 0, time.UTC)}
	ps.now = c.now
	ps.p = &Policy{Callers: map[string]CallerPolicy{"svc": r}}
	return ps, c
}

func admitN(ps *Policies, n int64) (*Ticket, error) {
	c := backend.Caller{ID: "svc"}
	return ps.Admit(&c, "", backend.Spec{TotalBytes: n}, 0)
}

func retryOf(err error) time.Duration {
	for _, d := range status.Convert(apierr.ToStatus(err)).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// TestHourlyWindow: the bytes of a rolling hour, what a refusal says to
// wait, and the window moving on.
func TestHourlyWindow(t *testing.T) {
	ps, c := quotaPolicies(t, CallerPolicy{Accounts: []string{DefaultAccount}, BytesPerHour: 100})
	if _, err := admitN(ps, 60); err != nil { // charged at 10:00
		t.Fatal(err)
	}
	c.t = c.t.Add(20 * time.Minute)
	if _, err := admitN(ps, 30); err != nil { // at 10:20
		t.Fatal(err)
	}
	c.t = c.t.Add(10 * time.Minute) // 10:30:30
	_, err := admitN(ps, 20)
	if status.Code(apierr.ToStatus(err)) != codes.ResourceExhausted {
		t.Fatalf("over the hour: %v", err)
	}
	// 60 bytes leave when 11:00 begins: 29m30s from 10:30:30.
	if d := retryOf(err); d != 29*time.Minute+30*time.Second {
		t.Fatalf("retry after %v", d)
	}
	c.t = c.t.Add(29*time.Minute + 30*time.Second)
	if _, err := admitN(ps, 20); err != nil {
		t.Fatalf("after the oldest charge left: %v", err)
	}
	if got := ps.use["svc"].used(c.t, 60); got != 50 {
		t.Fatalf("used %d, want 50", got)
	}
}

// TestRefund: a failed upload keeps only what reached X; concurrency is
// released once.
func TestRefund(t *testing.T) {
	ps, _ := quotaPolicies(t, CallerPolicy{Accounts: []string{DefaultAccount}, BytesPerDay: 100, MaxConcurrentUploads: 1})
	tk, err := admitN(ps, 80)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admitN(ps, 10); status.Code(apierr.ToStatus(err)) != codes.ResourceExhausted || retryOf(err) != time.Second {
		t.Fatalf("second concurrent upload: %v", err)
	}
	tk.Done(30) // failed after 30 bytes reached X
	tk.Done(30) // a second call changes nothing
	if u := ps.use["svc"]; u.inFlight != 0 || u.used(ps.now(), dayMinutes) != 30 {
		t.Fatalf("after done: %+v", u)
	}
	if _, err := admitN(ps, 70); err != nil {
		t.Fatalf("the refunded bytes are usable again: %v", err)
	}
	_, err = admitN(ps, 101)
	if status.Code(apierr.ToStatus(err)) != codes.ResourceExhausted || retryOf(err) != 0 || !strings.Contains(err.Error(), "per day") {
		t.Fatalf("a file larger than the day's quota: %v", err)
	}
}

// TestPrune: charges older than a day are dropped.
func TestPrune(t *testing.T) {
	var u usage
	t0 := time.Unix(1_800_000_000, 0)
	u.charge(minuteOf(t0), 5)
	u.charge(minuteOf(t0), 5)
	u.charge(minuteOf(t0.Add(time.Hour)), 7)
	if len(u.charges) != 2 || u.used(t0.Add(time.Hour), dayMinutes) != 17 {
		t.Fatalf("%+v", u.charges)
	}
	u.prune(t0.Add(24 * time.Hour))
	if len(u.charges) != 1 || u.charges[0].bytes != 7 {
		t.Fatalf("after a day: %+v", u.charges)
	}
}

// TestStatusRate: a caller's status calls beyond its rate (and a burst of
// twice as many) are ResourceExhausted with when to retry; the window
// refills with time; other callers are not charged.
func TestStatusRate(t *testing.T) {
	ps, c := quotaPolicies(t, CallerPolicy{StatusPerSecond: 5})
	ps.p.Others = &CallerPolicy{}
	svc := backend.Caller{ID: "svc"}
	for i := range 10 {
		if err := ps.AllowStatus(svc); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	err := ps.AllowStatus(svc)
	if status.Code(apierr.ToStatus(err)) != codes.ResourceExhausted || retryOf(err) <= 0 {
		t.Fatalf("past the burst: %v (retry %v)", err, retryOf(err))
	}
	if err := ps.AllowStatus(backend.Caller{ID: "other"}); err != nil {
		t.Fatalf("another caller: %v", err)
	}
	c.t = c.t.Add(time.Second)
	for i := range 5 {
		if err := ps.AllowStatus(svc); err != nil {
			t.Fatalf("call %d a second later: %v", i, err)
		}
	}
	if err := ps.AllowStatus(svc); err == nil {
		t.Fatal("a sixth call in that second went through")
	}
}

// TestKeysPerHour: a caller's new idempotency keys past its hourly bound
// are ResourceExhausted with when to retry; an hour refills them.
func TestKeysPerHour(t *testing.T) {
	ps, c := quotaPolicies(t, CallerPolicy{KeysPerHour: 3})
	svc := backend.Caller{ID: "svc"}
	for i := range 3 {
		if err := ps.AllowKey(svc); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	err := ps.AllowKey(svc)
	if status.Code(apierr.ToStatus(err)) != codes.ResourceExhausted || retryOf(err) < 10*time.Minute {
		t.Fatalf("the fourth key: %v (retry %v)", err, retryOf(err))
	}
	c.t = c.t.Add(time.Hour)
	if err := ps.AllowKey(svc); err != nil {
		t.Fatalf("an hour later: %v", err)
	}
}

// TestOthersArePerIdentity: the others rule bounds each unlisted identity
// on its own.
func TestOthersArePerIdentity(t *testing.T) {
	ps, _ := quotaPolicies(t, CallerPolicy{})
	ps.p.Others = &CallerPolicy{Accounts: []string{DefaultAccount}, MaxConcurrentUploads: 1}
	a, b := backend.Caller{ID: "a"}, backend.Caller{ID: "b"}
	ta, err := ps.Admit(&a, "", backend.Spec{TotalBytes: 10}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ps.Admit(&b, "", backend.Spec{TotalBytes: 10}, 0); err != nil {
		t.Fatalf("another unlisted caller: %v", err)
	}
	if _, err := ps.Admit(&a, "", backend.Spec{TotalBytes: 10}, 0); status.Code(apierr.ToStatus(err)) != codes.ResourceExhausted {
		t.Fatalf("the same unlisted caller's second upload: %v", err)
	}
	ta.Done(0)
	if _, err := ps.Admit(&a, "", backend.Spec{TotalBytes: 10}, 0); err != nil {
		t.Fatalf("after its first ended: %v", err)
	}
}
