package upstream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// TestReplanInFinishHonoursItsContext: a re-plan that Finish runs (X
// refused a segment after the last Write) still ends when Finish's ctx
// does, while the new segments' APPENDs hang.
func TestReplanInFinishHonoursItsContext(t *testing.T) {
	t.Parallel()
	// The emulator refuses over 3 MiB (having read the body); the edge
	// only holds APPENDs.
	srv := xfaketest.New(t, xfake.Options{Seed: 68, Tokens: []string{"tok"}, MaxSegment: 3 * mib})
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	errGone := errors.New("the caller went away")
	e := &edge{refuse: func(int, int64) bool { return false }, release: make(chan struct{}),
		// The 2 MiB segments of the new plan hang, and the caller of
		// Finish gives up once the first one reached X.
		stall: func(_ int, size int64) bool {
			if size > 3*mib/2 && size < 3*mib {
				cancel(errGone)
				return true
			}
			return false
		}}
	base := e.start(t, srv)
	t.Cleanup(func() { close(e.release) })
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.BaseURL, cfg.SegmentSize, cfg.Parallelism, cfg.SpillDir = base, 4*mib, 2, spillDir(t)
	})
	data := payload(5*mib, 68)
	u, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	// Both segments leave at once: the 4 MiB one is refused, the 1 MiB
	// last one taken (and kept); Finish cuts them again at 2 MiB.
	if _, err := u.Write(data); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := u.Finish(ctx); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, errGone) {
			t.Fatalf("Finish: %v, want its context's cause", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Finish went on re-planning 10s after its context ended")
	}
	u.Abort(nil)
	noBuffersHeld(t, c)
}

// TestReplanBusyLosesNoBytes: when no buffer frees up while a re-plan
// feeds the refused bytes again, Write fails with a BusyError; the bytes
// set aside must not be dropped from an upload that goes on. Either the
// upload failed, or a retry of what Write did not take makes it whole.
func TestReplanBusyLosesNoBytes(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 69, Tokens: []string{"tok"}, MaxSegment: 3 * mib})
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.SegmentSize, cfg.Parallelism, cfg.SpillDir = 4*mib, 1, spillDir(t)
		cfg.MaxInFlight, cfg.BufferWait, cfg.SpillAfter = 2, 200*time.Millisecond, time.Hour
	})
	data := payload(8*mib, 69)
	p := upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}
	a, err := c.Begin(context.Background(), nil, p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Abort(nil)
	// Two other uploads hold the Client's two buffers, one of them the
	// buffer of a's refused segment once it came back.
	var others []*upstream.Upload
	defer func() {
		for _, o := range others {
			o.Abort(nil)
		}
	}()
	hold := func() {
		o, err := c.Begin(context.Background(), nil, p)
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, o)
		if err := o.Ready(); err != nil {
			t.Fatal(err)
		}
	}
	hold()
	if _, err := a.Write(data[:4*mib]); err != nil {
		t.Fatal(err)
	}
	upstream.Eventually(t, 10*time.Second, "a's refused segment gave its buffer back", func() bool {
		held, _ := upstream.BuffersHeld(c)
		return held == 1
	})
	hold()
	n, err := a.Write(data[4*mib:])
	var busy *upstream.BusyError
	if !errors.As(err, &busy) {
		t.Fatalf("Write during the re-plan: %d, %v; want a BusyError", n, err)
	}
	for _, o := range others {
		o.Abort(nil)
	}
	others = nil
	if _, err := a.Write(data[4*mib+n:]); err != nil {
		// The upload failed: nothing it took is lost unsaid.
		if !errors.As(err, &busy) {
			t.Fatalf("Write after the BusyError: %v, want the BusyError the upload failed with", err)
		}
		return
	}
	m, err := a.Finish(context.Background())
	if err != nil {
		t.Fatalf("the upload took the rest after the BusyError, then: %v", err)
	}
	checkMedia(t, srv, m, data, 4)
}

// TestReplanAbortedWhileWaiting: Abort from another goroutine while the
// writer waits, to cut a refused segment again, for another APPEND in
// flight: Write returns, and no buffer or refused segment's file is left.
func TestReplanAbortedWhileWaiting(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 78, Tokens: []string{"tok"}, MaxSegment: 3 * mib})
	reached := make(chan struct{})
	e := &edge{refuse: func(int, int64) bool { return false }, release: make(chan struct{}),
		// Segment 1 hangs; segment 0 is refused at once.
		stall: func(idx int, _ int64) bool {
			if idx == 1 {
				close(reached)
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
	data := payload(12*mib, 78)
	u, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { _, err := u.Write(data); wrote <- err }()
	select {
	case <-reached:
	case <-time.After(20 * time.Second):
		t.Fatal("segment 1 never reached X")
	}
	// Segment 0's buffer came back: it was refused and set aside.
	upstream.Eventually(t, 10*time.Second, "segment 0 refused", func() bool {
		held, _ := upstream.BuffersHeld(c)
		return held == 2 && len(spillFiles(t, dir)) == 1
	})
	u.Abort(nil)
	select {
	case err := <-wrote:
		if !errors.Is(err, upstream.ErrAborted) {
			t.Fatalf("Write after Abort: %v, want ErrAborted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Write did not return after Abort")
	}
	noBuffersHeld(t, c)
	if f := spillFiles(t, dir); len(f) != 0 {
		t.Fatalf("files left after Abort: %v", f)
	}
}
