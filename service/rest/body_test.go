package rest

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// deadlineWriter records the read deadlines a body sets.
type deadlineWriter struct {
	*httptest.ResponseRecorder
	mu   sync.Mutex
	last time.Time
}

func (w *deadlineWriter) SetReadDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = t
	return nil
}

// TestStopIsNotPushedBack: once interrupt set the read deadline to now,
// no read moves it to the idle deadline again (a stop would otherwise wait
// for up to the idle timeout).
func TestStopIsNotPushedBack(t *testing.T) {
	t.Parallel()
	w := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
	b := newRESTBody(w, strings.NewReader("data"), time.Minute)
	b.interrupt()
	w.mu.Lock()
	stop := w.last
	w.mu.Unlock()
	if time.Until(stop) > time.Second {
		t.Fatalf("interrupt set the deadline to %v", stop)
	}
	// A read that was past its check of stopped re-arms now.
	b.rearm(time.Now())
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.last.Equal(stop) {
		t.Fatalf("after the stop, a read moved the deadline to %v (stop at %v)", w.last, stop)
	}
}
