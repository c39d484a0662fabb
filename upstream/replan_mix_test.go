package upstream_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// TestReplanWhileSegmentSpilled: the segment being filled was spilled to
// disk (another upload waited for its buffer) when X refused the segment
// before it; both are cut again, in order, and the upload is byte-exact.
func TestReplanWhileSegmentSpilled(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 71, Tokens: []string{"tok"}})
	e := &edge{refuse: func(_ int, size int64) bool { return size > 3*mib }, hold: make(chan struct{})}
	base := e.start(t, srv)
	dir := spillDir(t)
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.BaseURL, cfg.SegmentSize, cfg.Parallelism, cfg.SpillDir = base, 4*mib, 1, dir
		cfg.MaxInFlight, cfg.SpillAfter = 2, 50*time.Millisecond
	})
	data := payload(9*mib+5, 71)
	p := upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}
	var seen plans
	a, err := c.Begin(context.Background(), nil, p, upstream.WithReplanned(seen.fn))
	if err != nil {
		t.Fatal(err)
	}
	// Segment 0 leaves (its 413 held), segment 1 is 1 MiB in.
	if _, err := a.Write(data[:5*mib]); err != nil {
		t.Fatal(err)
	}
	other := payload(3*mib, 72)
	b, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(other))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Abort(nil)
	if err := b.Ready(); err != nil { // spills a's segment 1
		t.Fatal(err)
	}
	if f := spillFiles(t, dir); len(f) != 1 {
		t.Fatalf("spill files while a's 413 is held: %v, want a's segment 1", f)
	}
	close(e.hold)
	if _, err := a.Write(data[5*mib:]); err != nil {
		t.Fatal(err)
	}
	m, err := a.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkMedia(t, srv, m, data, 5)
	seen.want(t, upstream.Plan{{From: 0, Size: 2 * mib}})
	if _, err := b.Write(other); err != nil {
		t.Fatal(err)
	}
	if m, err := b.Finish(context.Background()); err != nil {
		t.Fatal(err)
	} else {
		checkMedia(t, srv, m, other, 2) // planned at the 2 MiB a learnt
	}
	noBuffersHeld(t, c)
}

// TestReplanStoppedMidway: Abort, or Interrupt, from another goroutine
// while the re-plan's new segments are in flight stops the writer and
// leaves no buffer or file; the interrupted upload resumes under the new
// plan from its acknowledged segments and is byte-exact.
func TestReplanStoppedMidway(t *testing.T) {
	t.Parallel()
	for _, interrupt := range []bool{false, true} {
		name := "abort"
		if interrupt {
			name = "interrupt"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := xfaketest.New(t, xfake.Options{Seed: 73, Tokens: []string{"tok"}, MaxSegment: 3 * mib})
			reached := make(chan struct{})
			var once sync.Once
			var stalling atomic.Bool
			stalling.Store(true)
			e := &edge{refuse: func(int, int64) bool { return false }, release: make(chan struct{}),
				// New segments 0 and 1 pass; 2 and 3 hang until the
				// resume.
				stall: func(idx int, size int64) bool {
					if stalling.Load() && idx >= 2 && size < 3*mib {
						once.Do(func() { close(reached) })
						return true
					}
					return false
				}}
			base := e.start(t, srv)
			t.Cleanup(func() { close(e.release) })
			dir := spillDir(t)
			c := newClient(t, srv, func(cfg *upstream.Config) {
				cfg.BaseURL, cfg.SegmentSize, cfg.Parallelism, cfg.SpillDir = base, 4*mib, 2, dir
			})
			data := payload(12*mib+3, 73)
			p := upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}
			var mu sync.Mutex
			var plan upstream.Plan
			acked := map[int]bool{}
			u, err := c.Begin(context.Background(), nil, p,
				upstream.WithReplanned(func(pl upstream.Plan) {
					mu.Lock()
					defer mu.Unlock()
					plan = pl
					for i := range acked { // numbered again
						if i >= pl[len(pl)-1].From {
							delete(acked, i)
						}
					}
				}),
				upstream.WithSegmentDone(func(i int, _ int64) {
					mu.Lock()
					defer mu.Unlock()
					acked[i] = true
				}))
			if err != nil {
				t.Fatal(err)
			}
			wrote := make(chan error, 1)
			go func() { _, err := u.Write(data); wrote <- err }()
			select {
			case <-reached:
			case <-time.After(20 * time.Second):
				t.Fatal("the re-plan's segment 2 never reached X")
			}
			if interrupt {
				u.Interrupt(50 * time.Millisecond)
			} else {
				u.Abort(nil)
			}
			select {
			case err := <-wrote:
				if err == nil {
					t.Fatal("Write succeeded after the upload was stopped")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Write did not return after the upload was stopped")
			}
			noBuffersHeld(t, c)
			if f := spillFiles(t, dir); len(f) != 0 {
				t.Fatalf("spill files left after the stop: %v", f)
			}
			if !interrupt {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if want := (upstream.Plan{{From: 0, Size: 2 * mib}}); !slices.Equal(plan, want) {
				t.Fatalf("plan %v, want %v", plan, want)
			}
			n := plan.Count(p.TotalBytes)
			ack := make([]bool, n)
			var off int64
			for i := range ack {
				ack[i] = acked[i]
			}
			for i := 0; i < n && ack[i]; i++ {
				off = plan.Offset(i + 1)
			}
			// Segment 2 hangs; 0 may still have been in flight, and cut
			// off, when it reached X.
			if off > 4*mib || !acked[0] && !acked[1] {
				t.Fatalf("acknowledged %v before the interruption, want segment 0 or 1 (and none from 2 on)", acked)
			}
			stalling.Store(false)
			finishResume(t, c, srv, p, upstream.ResumePoint{
				MediaID: u.MediaID(), SegmentSize: 4 * mib, Segments: n, Plan: plan, Acked: ack, Offset: off,
			}, data, 7)
		})
	}
}

// TestReplanWithFaults: faults and retries mixed with 413s, in every
// dialect; uploads are byte-exact and hold no more buffers than allowed.
func TestReplanWithFaults(t *testing.T) {
	t.Parallel()
	for _, d := range []upstream.Dialect{upstream.DialectV2, upstream.DialectV2Command, upstream.DialectV1} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := xfaketest.New(t, xfake.Options{Seed: 74, OAuth1: &o1, MaxSegment: 3 * mib / 2,
				FaultRate: 0.2, FaultKinds: xfake.AllFaultKinds(), StallFor: 150 * time.Millisecond})
			dir := spillDir(t)
			c := newClient(t, srv, func(cfg *upstream.Config) {
				cfg.Dialect, cfg.Credentials = d, oauth1Creds()
				cfg.SegmentSize, cfg.Parallelism, cfg.SpillDir = 4*mib, 3, dir
				cfg.MaxAttempts, cfg.StallTimeout = 10, time.Second
			})
			data := payload(9*mib+11, 74)
			m, err := upstream.UploadAll(context.Background(), c, nil,
				upstream.InitParams{MediaType: tsType, MediaCategory: "tweet_video", TotalBytes: int64(len(data))}, bytes.NewReader(data))
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatal(err)
				}
				t.Fatalf("upload with faults and 413s: %v", err)
			}
			checkMedia(t, srv, m, data, 10)
			if st := srv.X.Stats(); st.FaultsInjected == 0 {
				t.Fatal("no faults injected")
			}
			noBuffersHeld(t, c)
			if _, peak := upstream.BuffersHeld(c); peak > 4 {
				t.Fatalf("peak %d buffers, want at most Parallelism+1 = 4", peak)
			}
		})
	}
}

// TestReplanKeepsASpilledAcknowledgedLastSegment: as
// TestReplanKeepsAnAcknowledgedLastSegment, with the last segment spilled
// to disk (its caller was slow while another upload waited for a buffer)
// before X refused the segments ahead of it.
func TestReplanKeepsASpilledAcknowledgedLastSegment(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 76, Tokens: []string{"tok"}, MaxSegment: 3 * mib})
	// The 4 MiB segments reach the emulator, which refuses them, only once
	// the last segment was taken.
	e := &edge{refuse: func(int, int64) bool { return false }, release: make(chan struct{}),
		stall: func(_ int, size int64) bool { return size > 3*mib }}
	base := e.start(t, srv)
	released := false
	t.Cleanup(func() {
		if !released {
			close(e.release)
		}
	})
	dir := spillDir(t)
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.BaseURL, cfg.SegmentSize, cfg.Parallelism, cfg.SpillDir = base, 4*mib, 2, dir
		cfg.MaxInFlight, cfg.SpillAfter = 3, 50*time.Millisecond
	})
	data := payload(10*mib, 76)
	p := upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}
	r, seen := resumeWithLastAcked(t, c, p)
	defer r.Abort(nil)
	if _, err := r.Write(data[:9*mib]); err != nil {
		t.Fatal(err)
	}
	b, err := c.Begin(context.Background(), nil, p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Abort(nil)
	if err := b.Ready(); err != nil { // spills r's last segment
		t.Fatal(err)
	}
	if f := spillFiles(t, dir); len(f) != 1 {
		t.Fatalf("spill files while X holds segments 0 and 1: %v, want the last segment", f)
	}
	if _, err := r.Write(data[9*mib:]); err != nil {
		t.Fatal(err)
	}
	released = true
	close(e.release)
	m, err := r.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkMedia(t, srv, m, data, 5)
	seen.want(t, upstream.Plan{{From: 0, Size: 2 * mib}})
	b.Abort(nil)
	noBuffersHeld(t, c)
}

// TestReplanThenResumeDialects: TestReplanThenResume in the v2-command
// and v1.1 dialects, reading the rest with ReadFrom.
func TestReplanThenResumeDialects(t *testing.T) {
	t.Parallel()
	for _, d := range []upstream.Dialect{upstream.DialectV2Command, upstream.DialectV1} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := xfaketest.New(t, xfake.Options{Seed: 77, OAuth1: &o1, MaxSegment: 3 * mib})
			c := newClient(t, srv, func(cfg *upstream.Config) {
				cfg.Dialect, cfg.Credentials = d, oauth1Creds()
				cfg.SegmentSize, cfg.Parallelism, cfg.SpillDir = 4*mib, 1, spillDir(t)
			})
			data := payload(12*mib+7, 77)
			p := upstream.InitParams{MediaType: tsType, MediaCategory: "tweet_video", TotalBytes: int64(len(data))}
			var first acks
			u, err := c.Begin(context.Background(), nil, p, upstream.WithSegmentDone(first.fn))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := u.Write(data[:19*mib/2]); err != nil {
				t.Fatal(err)
			}
			u.Interrupt(10 * time.Second)
			plan := u.Plan()
			if want := (upstream.Plan{{From: 0, Size: 2 * mib}}); !slices.Equal(plan, want) {
				t.Fatalf("plan %v, want %v", plan, want)
			}
			_, n := u.Segments()
			acked := make([]bool, n)
			for _, i := range first.list() {
				acked[i] = true
			}
			var off int64
			for i := 0; i < n && acked[i]; i++ {
				off = plan.Offset(i + 1)
			}
			if off != 8*mib {
				t.Fatalf("committed %d bytes before the interruption (acked %v), want 8 MiB", off, first.list())
			}
			finishResume(t, c, srv, p, upstream.ResumePoint{
				MediaID: u.MediaID(), SegmentSize: 4 * mib, Segments: n, Plan: plan, Acked: acked, Offset: off,
			}, data, 7)
			noBuffersHeld(t, c)
		})
	}
}
