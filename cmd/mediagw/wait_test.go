package main

import (
	"sync"
	"testing"
	"time"
)

// eventually polls cond every 20 ms until it holds, failing t with what
// when it has not within d. It is for conditions nothing announces (an
// HTTP answer, a file on disk); what a test can be told of (the logs, the
// APPENDs at the emulator) it awaits through changes instead.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor is eventually with 15s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	eventually(t, 15*time.Second, "condition", cond)
}

// changes tells waiters that something they watch changed: notify wakes
// every await, which then looks again. The zero value is ready to use.
type changes struct {
	mu sync.Mutex
	ch chan struct{} // closed by the next notify
}

func (c *changes) next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

func (c *changes) notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}

// await returns once cond holds, looking again at every notify; it fails
// t with what when cond does not hold within d.
func (c *changes) await(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		next := c.next() // taken before looking, so no notify is missed
		if cond() {
			return
		}
		select {
		case <-next:
		case <-timer.C:
			t.Fatalf("%s: not within %s", what, d)
		}
	}
}
