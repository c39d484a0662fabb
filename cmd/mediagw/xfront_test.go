package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// appendWatch stands in front of the emulator (newEnvFront's front) and
// makes its v2 APPENDs events a test can await: each one arriving (its
// whole body read), each one ending, and whether its client had gone by
// then. While it holds, an arriving APPEND waits before the emulator sees
// it until unhold, or until its client goes away: net/http notices that
// only once the body has been read, hence the read first.
type appendWatch struct {
	mu      sync.Mutex
	held    bool
	release chan struct{} // closed by unhold
	counts  map[string]appendCounts
	changed changes
}

// appendCounts are the APPENDs of one media at the front.
type appendCounts struct {
	Arrived int // seen by the front
	Active  int // arrived and not ended
	Gone    int // ended with their client gone (the request's context done)
}

// newWatchedEnv is newEnv behind an appendWatch that holds every APPEND
// when hold is set; held ones are let through when the test ends.
func newWatchedEnv(t *testing.T, hold bool, xopts xfake.Options, flags ...string) (*env, *appendWatch) {
	t.Helper()
	w := &appendWatch{held: hold, release: make(chan struct{}), counts: map[string]appendCounts{}}
	e := newEnvFront(t, xopts, nil, w.front, flags...)
	t.Cleanup(w.unhold) // before the emulator's server closes: it waits for its handlers
	return e, w
}

// front is the func for newEnvFront.
func (w *appendWatch) front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		id, ok := appendMediaID(r)
		if !ok {
			next.ServeHTTP(rw, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		w.update(id, func(c *appendCounts) { c.Arrived++; c.Active++ })
		defer func() {
			gone := r.Context().Err() != nil
			w.update(id, func(c *appendCounts) {
				c.Active--
				if gone {
					c.Gone++
				}
			})
		}()
		w.mu.Lock()
		held, release := w.held, w.release
		w.mu.Unlock()
		if held {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(rw, r)
	})
}

// appendMediaID reads the media id of POST /2/media/upload/{id}/append.
func appendMediaID(r *http.Request) (string, bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/2/media/upload/")
	if !ok || r.Method != http.MethodPost {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "/append")
	return id, ok && id != "" && !strings.Contains(id, "/")
}

func (w *appendWatch) update(id string, f func(*appendCounts)) {
	w.mu.Lock()
	c := w.counts[id]
	f(&c)
	w.counts[id] = c
	w.mu.Unlock()
	w.changed.notify()
}

// unhold lets the held APPENDs, and every later one, through.
func (w *appendWatch) unhold() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held {
		w.held = false
		close(w.release)
	}
}

// of returns the counts of media id.
func (w *appendWatch) of(id string) appendCounts {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts[id]
}

// total returns the counts summed over every media.
func (w *appendWatch) total() appendCounts {
	w.mu.Lock()
	defer w.mu.Unlock()
	var t appendCounts
	for _, c := range w.counts {
		t.Arrived += c.Arrived
		t.Active += c.Active
		t.Gone += c.Gone
	}
	return t
}

// await waits up to 15s for cond, looking again at every APPEND that
// arrives or ends.
func (w *appendWatch) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	w.changed.await(t, 15*time.Second, what, cond)
}
