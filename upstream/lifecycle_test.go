package upstream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// pollStatus sends STATUS every 100 ms until X reports succeeded, failed
// or a processing error, and returns every answer. It gives up after 20 s.
func pollStatus(t *testing.T, c *upstream.Client, id string) []*upstream.Media {
	t.Helper()
	var seen []*upstream.Media
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		m, err := c.Status(context.Background(), nil, id)
		if err != nil {
			t.Fatalf("STATUS after %d answers: %v", len(seen), err)
		}
		seen = append(seen, m)
		if p := m.Processing; p == nil || p.State == upstream.StateSucceeded || p.State == upstream.StateFailed || p.Error != nil {
			return seen
		}
	}
	t.Fatalf("processing did not end within 20 s: %d answers", len(seen))
	return nil
}

func TestProcessingProgression(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 10, ProcessingTime: 2500 * time.Millisecond})
	c := newClient(t, srv, nil)
	data := mp4(200*kib, 10)
	p := upstream.InitParams{MediaType: "video/mp4", MediaCategory: "tweet_video", TotalBytes: int64(len(data))}
	m, err := upstream.UploadAll(context.Background(), c, nil, p, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	checkMedia(t, srv, m, data, 4)
	if m.Processing == nil || m.Processing.State != upstream.StatePending {
		t.Fatalf("FINALIZE processing = %+v", m.Processing)
	}
	seenInProgress := false
	answers := pollStatus(t, c, m.ID)
	for _, a := range answers {
		if a.ID != m.ID || a.Processing == nil {
			t.Fatalf("STATUS answer %+v", a)
		}
		seenInProgress = seenInProgress || a.Processing.State == upstream.StateInProgress
	}
	last := answers[len(answers)-1].Processing
	if !seenInProgress || last.State != upstream.StateSucceeded || last.Error != nil || last.ProgressPercent != 100 {
		t.Fatalf("in progress seen %v, last %+v", seenInProgress, last)
	}
}

func TestProcessingFailure(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 11, ProcessingTime: time.Second})
	c := newClient(t, srv, nil)
	data := payload(100*kib, 11) // no ftyp box: X cannot process it
	data[0] = 0
	p := upstream.InitParams{MediaType: "video/mp4", MediaCategory: "tweet_video", TotalBytes: int64(len(data))}
	m, err := upstream.UploadAll(context.Background(), c, nil, p, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	answers := pollStatus(t, c, m.ID)
	pe := answers[len(answers)-1].Processing.Error
	if pe == nil || pe.Name != "InvalidMedia" || pe.Code != 1 || !pe.InvalidInput() {
		t.Fatalf("last STATUS processing %+v", answers[len(answers)-1].Processing)
	}
}

func TestReadyMediaHasNoProcessing(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 12})
	c := newClient(t, srv, nil)
	data := payload(10*kib, 12)
	m, err := upstream.UploadAll(context.Background(), c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if m.Processing != nil {
		t.Fatalf("synchronously finalized media with processing %+v", m.Processing)
	}
	if n := srv.X.Stats().Requests["status"]; n != 0 {
		t.Fatalf("%d STATUS requests for ready media", n)
	}
	// STATUS on such media is X's 400 "Not found".
	_, err = c.Status(context.Background(), nil, m.ID)
	var ae *upstream.APIError
	if !errors.As(err, &ae) || ae.StatusCode() != 400 {
		t.Fatalf("Status = %v", err)
	}
}

// TestCancelMidUpload is not parallel so that goleak sees only its own
// goroutines.
func TestCancelMidUpload(t *testing.T) {
	srv := xfaketest.New(t, xfake.Options{Seed: 14, Latency: 200 * time.Millisecond})
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.SegmentSize = 16 * kib })
	ignore := goleak.IgnoreCurrent()

	ctx, cancel := context.WithCancel(context.Background())
	data := payload(1<<20, 14)
	pr, pw := io.Pipe()
	go func() {
		// Feed one segment at a time, slowly, and never finish.
		for off := 0; off < len(data)/2; off += 16 * kib {
			if _, err := pw.Write(data[off : off+16*kib]); err != nil {
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := upstream.UploadAll(ctx, c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}, pr)
		done <- err
	}()
	// Cancel once APPENDs are in flight.
	upstream.Eventually(t, 5*time.Second, "two APPENDs answered", func() bool { return srv.X.Stats().Requests["append"] >= 2 })
	start := time.Now()
	cancel()
	pw.CloseWithError(context.Canceled) // the caller's stream ends too
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("upload did not stop within 2 s of cancellation")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("cancellation took %v", d)
	}
	if held, _ := upstream.BuffersHeld(c); held != 0 {
		t.Fatalf("%d buffers still held after cancellation", held)
	}
	upstream.CloseIdle(c)
	goleak.VerifyNone(t, ignore)
}

// TestAbortFromAnotherGoroutine aborts while the writer is blocked on
// back-pressure.
func TestAbortFromAnotherGoroutine(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 15, Latency: 300 * time.Millisecond})
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.SegmentSize, cfg.Parallelism = 8*kib, 1 })
	data := payload(200*kib, 15)
	u, err := c.Begin(context.Background(), nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	abortErr := errors.New("client stream broke")
	time.AfterFunc(100*time.Millisecond, func() { u.Abort(abortErr) })
	start := time.Now()
	_, err = u.Write(data) // blocks: one APPEND in flight, 300 ms each
	if !errors.Is(err, abortErr) || time.Since(start) > time.Second {
		t.Fatalf("Write = %v after %v", err, time.Since(start))
	}
	if _, err := u.Finish(context.Background()); !errors.Is(err, abortErr) {
		t.Fatalf("Finish after Abort = %v", err)
	}
	u.Abort(nil) // idempotent
	if held, _ := upstream.BuffersHeld(c); held != 0 {
		t.Fatalf("%d buffers held", held)
	}
}
