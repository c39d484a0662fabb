package upstream_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// gatedReader returns its first bytes at once, then blocks until gate is
// closed before returning the rest.
type gatedReader struct {
	data  []byte
	first int
	gate  chan struct{}
	sent  int
}

func (r *gatedReader) Read(p []byte) (int, error) {
	if r.sent >= len(r.data) {
		return 0, io.EOF
	}
	if r.sent >= r.first {
		<-r.gate
	}
	end := len(r.data)
	if r.sent < r.first {
		end = r.first
	}
	k := copy(p, r.data[r.sent:end])
	r.sent += k
	return k, nil
}

// spillFiles lists the spill files in dir.
func spillFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "mediagw-segment-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSlowSegmentIsSpilled: with one buffer in all, an upload that stops
// in the middle of a segment (inside its reader, as a slow REST caller
// does) does not keep another upload waiting: its segment is spilled to
// disk after SpillAfter, the other upload gets the buffer, and the slow
// one finishes byte-exact from where it stood once its bytes come.
func TestSlowSegmentIsSpilled(t *testing.T) {
	t.Parallel()
	const seg = 64 * kib
	srv := xfaketest.New(t, xfake.Options{Seed: 31})
	spill := t.TempDir()
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.SegmentSize, cfg.MaxInFlight, cfg.SpillAfter, cfg.SpillDir = seg, 1, 100*time.Millisecond, spill
	})
	slowData := payload(3*seg, 31)
	slow, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(slowData))})
	if err != nil {
		t.Fatal(err)
	}
	r := &gatedReader{data: slowData, first: seg + 1000, gate: make(chan struct{})}
	slowDone := make(chan error, 1)
	go func() {
		if _, err := slow.ReadFrom(r); err != nil {
			slowDone <- err
			return
		}
		_, err := slow.Finish(context.Background())
		slowDone <- err
	}()
	// The slow upload sent its first segment and holds a buffer with 1000
	// bytes of the second, blocked in its reader.
	upstream.Eventually(t, 10*time.Second, "an APPEND answered", func() bool { return srv.X.Stats().Requests["append"] >= 1 })

	fastData := payload(2*seg, 32)
	start := time.Now()
	fast, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(fastData))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fast.Write(fastData); err != nil {
		t.Fatal(err)
	}
	m, err := fast.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkMedia(t, srv, m, fastData, 2)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the fast upload took %s behind the slow one", d)
	}
	if len(spillFiles(t, spill)) != 1 {
		t.Fatalf("spill files while the slow upload waits: %v, want its one segment", spillFiles(t, spill))
	}
	close(r.gate)
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	checkMedia(t, srv, &upstream.Media{ID: slow.MediaID(), Size: int64(len(slowData))}, slowData, 3)
	if f := spillFiles(t, spill); len(f) != 0 {
		t.Fatalf("spill files left: %v", f)
	}
	if held, _ := upstream.BuffersHeld(c); held != 0 {
		t.Fatalf("%d buffers held at the end", held)
	}
}

// TestBufferWaitIsBounded: a writer that finds no buffer within
// BufferWait fails with a BusyError (ResourceExhausted to callers), it
// does not hang.
func TestBufferWaitIsBounded(t *testing.T) {
	t.Parallel()
	const seg = 64 * kib
	srv := xfaketest.New(t, xfake.Options{Seed: 33})
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.SegmentSize, cfg.MaxInFlight, cfg.BufferWait, cfg.SpillAfter = seg, 1, 300*time.Millisecond, time.Hour
	})
	holder, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: 2 * seg})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Abort(nil)
	if _, err := holder.Write(payload(1000, 33)); err != nil {
		t.Fatal(err)
	}
	waiter, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: seg})
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Abort(nil)
	start := time.Now()
	_, err = waiter.Write(payload(seg, 34))
	var busy *upstream.BusyError
	if !errors.As(err, &busy) || busy.StatusCode() != 429 || busy.RetryDelay() <= 0 {
		t.Fatalf("write with no buffer free: %v, want a BusyError", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Fatalf("gave up after %s, want about the 300ms BufferWait", d)
	}
}

// TestReadyTakesTheBuffer: Ready acquires the segment buffer before any
// byte is given, and an idle one is reclaimed (no file: nothing to spill)
// when another upload needs it.
func TestReadyTakesTheBuffer(t *testing.T) {
	t.Parallel()
	const seg = 64 * kib
	srv := xfaketest.New(t, xfake.Options{Seed: 35})
	spill := t.TempDir()
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.SegmentSize, cfg.MaxInFlight, cfg.SpillAfter, cfg.SpillDir = seg, 1, 50*time.Millisecond, spill
	})
	idle, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: seg})
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Ready(); err != nil {
		t.Fatal(err)
	}
	if held, _ := upstream.BuffersHeld(c); held != 1 {
		t.Fatalf("after Ready: %d buffers held, want 1", held)
	}
	data := payload(seg, 36)
	other, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: seg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Write(data); err != nil {
		t.Fatal(err)
	}
	m, err := other.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkMedia(t, srv, m, data, 1)
	if f := spillFiles(t, spill); len(f) != 0 {
		t.Fatalf("an empty buffer was spilled to %v", f)
	}
	// The idle upload gets a buffer again when its bytes come.
	if _, err := idle.Write(data); err != nil {
		t.Fatal(err)
	}
	if _, err := idle.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
}
