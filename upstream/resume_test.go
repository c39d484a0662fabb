package upstream_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// acks records WithSegmentDone calls.
type acks struct {
	mu   sync.Mutex
	done map[int]bool
}

func (a *acks) fn(i int, _ int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done == nil {
		a.done = map[int]bool{}
	}
	a.done[i] = true
}

func (a *acks) list() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []int
	for i := range a.done {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// TestInterruptThenResume: an upload interrupted mid-segment keeps what X
// acknowledged and drops the partial segment; resumed from the end of the
// acknowledged run, with no new INIT, it is byte-exact at X.
func TestInterruptThenResume(t *testing.T) {
	t.Parallel()
	const seg, segs = 64 * kib, 10
	srv := xfaketest.New(t, xfake.Options{Seed: 21})
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.SegmentSize = seg })
	data := payload(seg*segs-100, 21)
	p := upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}
	var first acks
	u, err := c.Begin(context.Background(), nil, p, upstream.WithSegmentDone(first.fn))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(data[:5*seg+seg/2]); err != nil {
		t.Fatal(err)
	}
	u.Interrupt(5 * time.Second)
	if _, err := u.Write(data[5*seg+seg/2:]); !errors.Is(err, upstream.ErrInterrupted) {
		t.Fatalf("Write after Interrupt: %v, want ErrInterrupted", err)
	}
	if got := first.list(); len(got) != 5 || got[4] != 4 {
		t.Fatalf("segments acknowledged before the interruption: %v, want 0..4", got)
	}
	if held, _ := upstream.BuffersHeld(c); held != 0 {
		t.Fatalf("%d buffers held after Interrupt", held)
	}
	size, n := u.Segments()
	acked := make([]bool, n)
	for _, i := range first.list() {
		acked[i] = true
	}
	var second acks
	r, err := c.Resume(context.Background(), nil, p, upstream.ResumePoint{
		MediaID: u.MediaID(), MediaKey: u.MediaKey(), SegmentSize: size, Segments: n, Acked: acked, Offset: 5 * seg,
	}, upstream.WithSegmentDone(second.fn))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(data[5*seg:]); err != nil {
		t.Fatal(err)
	}
	m, err := r.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkMedia(t, srv, m, data, segs)
	if got := second.list(); len(got) != 5 || got[0] != 5 {
		t.Fatalf("segments acknowledged after the resume: %v, want 5..9", got)
	}
	if st := srv.X.Stats(); st.Requests["init"] != 1 || st.Requests["finalize"] != 1 {
		t.Fatalf("X saw %d INIT and %d FINALIZE, want 1 each", st.Requests["init"], st.Requests["finalize"])
	}
}

// TestResumeSkipsAcknowledgedSegments: segments X acknowledged out of
// order past the resume offset are taken from the caller but not sent
// again.
func TestResumeSkipsAcknowledgedSegments(t *testing.T) {
	t.Parallel()
	const seg, segs = 64 * kib, 10
	srv := xfaketest.New(t, xfake.Options{Seed: 22})
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.SegmentSize = seg })
	data := payload(seg*segs, 22)
	p := upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}
	u, err := c.Begin(context.Background(), nil, p)
	if err != nil {
		t.Fatal(err)
	}
	// All ten segments reach X; the record says 0..4 and 7.
	if _, err := u.Write(data); err != nil {
		t.Fatal(err)
	}
	u.Interrupt(5 * time.Second)
	acked := make([]bool, segs)
	for _, i := range []int{0, 1, 2, 3, 4, 7} {
		acked[i] = true
	}
	var second acks
	r, err := c.Resume(context.Background(), nil, p, upstream.ResumePoint{
		MediaID: u.MediaID(), SegmentSize: seg, Segments: segs, Acked: acked, Offset: 5 * seg,
	}, upstream.WithSegmentDone(second.fn))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(data[5*seg:]); err != nil {
		t.Fatal(err)
	}
	m, err := r.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	info := checkMedia(t, srv, m, data, segs)
	if got := second.list(); len(got) != 4 || got[0] != 5 || got[1] != 6 || got[2] != 8 || got[3] != 9 {
		t.Fatalf("segments sent after the resume: %v, want 5 6 8 9", got)
	}
	if info.AppendRequests != 14 {
		t.Fatalf("X saw %d APPENDs, want 10 + 4", info.AppendRequests)
	}
}

func TestResumeRefusesBadPoints(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 23})
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.SegmentSize = 64 * kib })
	p := upstream.InitParams{MediaType: tsType, TotalBytes: 640 * kib}
	for name, r := range map[string]upstream.ResumePoint{
		"no media id":        {SegmentSize: 64 * kib, Segments: 10},
		"plan does not fit":  {MediaID: "1", SegmentSize: 64 * kib, Segments: 9},
		"offset mid-segment": {MediaID: "1", SegmentSize: 64 * kib, Segments: 10, Offset: 100},
		"offset past total":  {MediaID: "1", SegmentSize: 64 * kib, Segments: 10, Offset: 704 * kib},
	} {
		if _, err := c.Resume(context.Background(), nil, p, r); !errors.Is(err, upstream.ErrInvalidParams) {
			t.Errorf("%s: %v, want ErrInvalidParams", name, err)
		}
	}
	if st := srv.X.Stats(); len(st.Requests) != 0 {
		t.Fatalf("Resume sent requests: %v", st.Requests)
	}
}
