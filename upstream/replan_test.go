package upstream_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

const mib = 1 << 20

// plans records WithReplanned calls.
type plans struct {
	mu  sync.Mutex
	all []upstream.Plan
}

func (p *plans) fn(plan upstream.Plan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = append(p.all, plan)
}

// want fails t unless the plans reported are want, in order.
func (p *plans) want(t *testing.T, want ...upstream.Plan) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.EqualFunc(p.all, want, slices.Equal) {
		t.Fatalf("plans %v, want %v", p.all, want)
	}
}

// resumeWithLastAcked sends INIT for a 10 MiB upload planned at 4 MiB,
// interrupts it, and resumes it as an earlier life would have left it:
// the 2 MiB last segment acknowledged, nothing else.
func resumeWithLastAcked(t *testing.T, c *upstream.Client, p upstream.InitParams) (*upstream.Upload, *plans) {
	t.Helper()
	u, err := c.Begin(context.Background(), nil, p)
	if err != nil {
		t.Fatal(err)
	}
	u.Interrupt(time.Second)
	seen := &plans{}
	r, err := c.Resume(context.Background(), nil, p, upstream.ResumePoint{
		MediaID: u.MediaID(), SegmentSize: 4 * mib, Segments: 3, Acked: []bool{false, false, true}, Offset: 0,
	}, upstream.WithReplanned(seen.fn))
	if err != nil {
		t.Fatal(err)
	}
	return r, seen
}

// finishResume resumes at rp, reads the rest of data into the upload,
// finishes it, and checks X holds data in segs segments.
func finishResume(t *testing.T, c *upstream.Client, srv *xfaketest.Server, p upstream.InitParams, rp upstream.ResumePoint, data []byte, segs int) {
	t.Helper()
	r, err := c.Resume(context.Background(), nil, p, rp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadFrom(bytes.NewReader(data[rp.Offset:])); err != nil {
		t.Fatal(err)
	}
	m, err := r.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkMedia(t, srv, m, data, segs)
}

// noBuffersHeld fails t when c still holds segment buffers.
func noBuffersHeld(t *testing.T, c *upstream.Client) {
	t.Helper()
	if held, _ := upstream.BuffersHeld(c); held != 0 {
		t.Fatalf("%d segment buffers held", held)
	}
}

// spillDir is an empty directory for a Client's spilled and refused
// segments, checked empty when the test ends.
func spillDir(t *testing.T) string {
	dir := t.TempDir()
	t.Cleanup(func() {
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Errorf("%d files left in the spill directory", len(left))
		}
	})
	return dir
}

// TestReplanAfter413: X's edge refuses APPENDs over 1.5 MiB with an empty
// 413. An upload planned at 4 MiB is cut again at 2 MiB, refused again,
// and finished at 1 MiB, byte-exact; the next upload is planned at 1 MiB
// from the start and meets no 413.
func TestReplanAfter413(t *testing.T) {
	t.Parallel()
	for _, d := range []upstream.Dialect{upstream.DialectV2, upstream.DialectV2Command, upstream.DialectV1} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := xfaketest.New(t, xfake.Options{Seed: 61, Tokens: []string{"tok"}, OAuth1: &o1, MaxSegment: 3 * mib / 2})
			dir := spillDir(t)
			c := newClient(t, srv, func(cfg *upstream.Config) {
				cfg.Dialect, cfg.SegmentSize, cfg.Parallelism, cfg.SpillDir = d, 4*mib, 4, dir
				if d == upstream.DialectV1 {
					cfg.Credentials = oauth1Creds()
				}
			})
			data := payload(16*mib+12345, 61)
			p := upstream.InitParams{MediaType: tsType, MediaCategory: "tweet_video", TotalBytes: int64(len(data))}
			var seen plans
			var done acks
			m, err := upstream.UploadAll(context.Background(), c, nil, p, bytes.NewReader(data),
				upstream.WithReplanned(seen.fn), upstream.WithSegmentDone(done.fn))
			if err != nil {
				t.Fatal(err)
			}
			checkMedia(t, srv, m, data, 17)
			want := []upstream.Plan{{{From: 0, Size: 2 * mib}}, {{From: 0, Size: mib}}}
			seen.want(t, want...)
			if got := done.list(); len(got) != 17 || got[16] != 16 {
				t.Fatalf("segments acknowledged: %v, want 0..16", got)
			}
			noBuffersHeld(t, c)

			// The next upload starts at the size X took.
			key := "append"
			if d == upstream.DialectV1 {
				key = "v1.1-append"
			}
			before := srv.X.Stats().Requests[key]
			u, err := c.Begin(context.Background(), nil, p)
			if err != nil {
				t.Fatal(err)
			}
			if size, n := u.Segments(); size != mib || n != 17 {
				t.Fatalf("next upload planned at %d bytes × %d, want 1 MiB × 17", size, n)
			}
			if _, err := u.Write(data); err != nil {
				t.Fatal(err)
			}
			m2, err := u.Finish(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			checkMedia(t, srv, m2, data, 17)
			if n := srv.X.Stats().Requests[key] - before; n != 17 {
				t.Fatalf("next upload made %d APPENDs, want 17 (no 413)", n)
			}
		})
	}
}

// edge is a proxy in front of the emulator that answers 413, with an
// empty body, to the APPENDs refuse picks by segment index and size.
type edge struct {
	refuse  func(index int, size int64) bool
	refused atomic.Int32
	// hold, when set, delays each 413 until it is closed.
	hold chan struct{}
	// stall, when set, picks APPENDs passed on to the emulator that wait
	// until release is closed.
	stall   func(index int, size int64) bool
	release chan struct{}
}

var segmentIndexField = regexp.MustCompile(`name="segment_index"\r\n\r\n([0-9]+)\r\n`)

func (e *edge) start(t *testing.T, srv *xfaketest.Server) string {
	target, _ := url.Parse(srv.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/append") {
			br := bufio.NewReaderSize(r.Body, 4096)
			head, err := br.Peek(1024)
			m := segmentIndexField.FindSubmatch(head)
			switch {
			case m == nil && len(head) < 1024 && err != nil:
				return // the client went before its body did (an upload aborted)
			case m == nil:
				t.Errorf("APPEND without a segment_index field first: %q", head)
				return
			}
			idx, _ := strconv.Atoi(string(m[1]))
			if e.refuse(idx, r.ContentLength) {
				if e.hold != nil {
					<-e.hold
				}
				e.refused.Add(1)
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				return
			}
			if e.stall != nil && e.stall(idx, r.ContentLength) {
				<-e.release
			}
			r.Body = io.NopCloser(br)
		}
		rp.ServeHTTP(w, r)
	})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestReplanMidUpload: X takes two 4 MiB segments, then refuses larger
// than 3 MiB. The refused segment and the one behind it are cut again at
// 2 MiB from segment 2 on; the first two keep their indexes.
func TestReplanMidUpload(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 62, Tokens: []string{"tok"}})
	e := &edge{refuse: func(idx int, size int64) bool { return idx >= 2 && size > 3*mib }}
	base := e.start(t, srv)
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.BaseURL, cfg.SegmentSize, cfg.Parallelism, cfg.SpillDir = base, 4*mib, 1, spillDir(t)
	})
	data := payload(14*mib+1, 62)
	var seen plans
	m, err := upstream.UploadAll(context.Background(), c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))},
		bytes.NewReader(data), upstream.WithReplanned(seen.fn))
	if err != nil {
		t.Fatal(err)
	}
	// 2 × 4 MiB, then 6 MiB + 1 byte in 2 MiB segments: 4 more.
	checkMedia(t, srv, m, data, 6)
	want := []upstream.Plan{{{From: 0, Size: 4 * mib}, {From: 2, Size: 2 * mib}}}
	seen.want(t, want...)
	if n := e.refused.Load(); n != 1 {
		t.Fatalf("%d APPENDs refused, want 1", n)
	}
}

// TestReplanGivesUp: when X took a segment behind the refused ones, or the
// refused segment is already as small as a re-plan goes, the upload fails
// with X's 413 and says why.
func TestReplanGivesUp(t *testing.T) {
	t.Parallel()
	t.Run("a later segment was taken", func(t *testing.T) {
		t.Parallel()
		srv := xfaketest.New(t, xfake.Options{Seed: 63, Tokens: []string{"tok"}})
		// Segment 0 is refused, but only after segment 1 was taken: its
		// bytes are gone.
		e := &edge{refuse: func(idx int, _ int64) bool { return idx == 0 }, hold: make(chan struct{})}
		base := e.start(t, srv)
		var once sync.Once
		c := newClient(t, srv, func(cfg *upstream.Config) {
			cfg.BaseURL, cfg.SegmentSize, cfg.Parallelism, cfg.SpillDir = base, 4*mib, 4, spillDir(t)
		})
		data := payload(14*mib, 63)
		_, err := upstream.UploadAll(context.Background(), c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))},
			bytes.NewReader(data), upstream.WithSegmentDone(func(i int, _ int64) {
				if i == 1 {
					once.Do(func() { close(e.hold) })
				}
			}))
		var ae *upstream.APIError
		if !errors.As(err, &ae) || ae.StatusCode() != http.StatusRequestEntityTooLarge || !strings.Contains(err.Error(), "X took segment 1 after refusing segment 0") {
			t.Fatalf("err = %v, want X's 413 saying segment 1 was taken", err)
		}
		noBuffersHeld(t, c)
	})
	t.Run("the last segment was taken", func(t *testing.T) {
		t.Parallel()
		srv := xfaketest.New(t, xfake.Options{Seed: 66, Tokens: []string{"tok"}})
		// The full segments are refused after the short last one was
		// taken; its buffer was kept, and it is cut again with them.
		e := &edge{refuse: func(_ int, size int64) bool { return size > 3*mib }, hold: make(chan struct{})}
		base := e.start(t, srv)
		var once sync.Once
		c := newClient(t, srv, func(cfg *upstream.Config) {
			cfg.BaseURL, cfg.SegmentSize, cfg.Parallelism, cfg.SpillDir = base, 4*mib, 4, spillDir(t)
		})
		data := payload(10*mib, 66)
		var seen plans
		m, err := upstream.UploadAll(context.Background(), c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))},
			bytes.NewReader(data), upstream.WithReplanned(seen.fn), upstream.WithSegmentDone(func(i int, _ int64) {
				if i == 2 {
					once.Do(func() { close(e.hold) })
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		checkMedia(t, srv, m, data, 5)
		seen.want(t, upstream.Plan{{From: 0, Size: 2 * mib}})
		noBuffersHeld(t, c)
	})
	t.Run("already at the smallest size", func(t *testing.T) {
		t.Parallel()
		srv := xfaketest.New(t, xfake.Options{Seed: 64, Tokens: []string{"tok"}, MaxSegment: 512 * kib})
		c := newClient(t, srv, func(cfg *upstream.Config) { cfg.SegmentSize, cfg.SpillDir = mib, spillDir(t) })
		data := payload(3*mib, 64)
		_, err := upstream.UploadAll(context.Background(), c, nil, upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))},
			bytes.NewReader(data))
		var ae *upstream.APIError
		if !errors.As(err, &ae) || ae.StatusCode() != http.StatusRequestEntityTooLarge || !strings.Contains(err.Error(), "segments are cut no smaller than 1048576 bytes") {
			t.Fatalf("err = %v, want X's 413 saying segments go no smaller", err)
		}
	})
}

// TestReplanThenResume: an upload cut smaller and then interrupted goes on
// from its acknowledged segments under the new plan, with no new INIT,
// and is byte-exact.
func TestReplanThenResume(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 65, Tokens: []string{"tok"}, MaxSegment: 3 * mib})
	dir := spillDir(t)
	c := newClient(t, srv, func(cfg *upstream.Config) {
		cfg.SegmentSize, cfg.Parallelism, cfg.SpillDir = 4*mib, 1, dir
	})
	data := payload(12*mib+7, 65)
	p := upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}
	var seen plans
	var first acks
	u, err := c.Begin(context.Background(), nil, p, upstream.WithReplanned(seen.fn), upstream.WithSegmentDone(first.fn))
	if err != nil {
		t.Fatal(err)
	}
	// 9.5 MiB: the 4 MiB segments are refused and cut at 2 MiB; four of
	// them are complete, the fifth is being filled.
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
	committed := int64(0)
	for _, i := range first.list() {
		acked[i] = true
	}
	for i := 0; i < n && acked[i]; i++ {
		committed = plan.Offset(i + 1)
	}
	if committed != 8*mib {
		t.Fatalf("committed %d bytes before the interruption (acked %v), want 8 MiB", committed, first.list())
	}
	inits := srv.X.Stats().Requests["init"]
	r, err := c.Resume(context.Background(), nil, p, upstream.ResumePoint{
		MediaID: u.MediaID(), MediaKey: u.MediaKey(), SegmentSize: 4 * mib, Segments: n, Plan: plan, Acked: acked, Offset: committed,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(data[committed:]); err != nil {
		t.Fatal(err)
	}
	m, err := r.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkMedia(t, srv, m, data, 7)
	if got := srv.X.Stats().Requests["init"]; got != inits {
		t.Fatalf("%d INITs after the resume, want %d", got, inits)
	}
	// A plan that does not fit the file is refused before anything is sent.
	_, err = c.Resume(context.Background(), nil, p, upstream.ResumePoint{
		MediaID: u.MediaID(), SegmentSize: 4 * mib, Segments: n, Plan: upstream.Plan{{From: 0, Size: 2 * mib}, {From: 9, Size: mib}}, Offset: 0,
	})
	if !errors.Is(err, upstream.ErrInvalidParams) {
		t.Fatalf("resume with a plan that does not fit: %v", err)
	}
}

// TestPlanArithmetic checks a two-run plan against the segments counted
// one by one.
func TestPlanArithmetic(t *testing.T) {
	p := upstream.Plan{{From: 0, Size: 10}, {From: 3, Size: 4}, {From: 5, Size: 3}}
	const total = 30 + 8 + 7 // 3×10, 2×4, then 3+3+1
	var off int64
	for i := range 8 {
		if got := p.Offset(i); got != off {
			t.Fatalf("Offset(%d) = %d, want %d", i, got, off)
		}
		if got := p.Index(off); got != i {
			t.Fatalf("Index(%d) = %d, want %d", off, got, i)
		}
		l := p.Len(i, total)
		if got := p.Index(off + l - 1); got != i {
			t.Fatalf("Index(%d) = %d, want %d (last byte of segment %d)", off+l-1, got, i, i)
		}
		off += l
	}
	if off != total || p.Count(total) != 8 || p.Len(7, total) != 1 {
		t.Fatalf("segments end at %d, Count %d, last %d; want %d, 8, 1", off, p.Count(total), p.Len(7, total), total)
	}
}

// TestReplanKeepsAnAcknowledgedLastSegment: a resume whose last segment X
// acknowledged in the earlier life, and whose earlier segments X now
// refuses as too large, cuts them again together with the last one.
func TestReplanKeepsAnAcknowledgedLastSegment(t *testing.T) {
	t.Parallel()
	srv := xfaketest.New(t, xfake.Options{Seed: 67, Tokens: []string{"tok"}, MaxSegment: 3 * mib})
	c := newClient(t, srv, func(cfg *upstream.Config) { cfg.SegmentSize, cfg.SpillDir = 4*mib, spillDir(t) })
	data := payload(10*mib, 67)
	p := upstream.InitParams{MediaType: tsType, TotalBytes: int64(len(data))}
	r, seen := resumeWithLastAcked(t, c, p)
	if _, err := r.Write(data); err != nil {
		t.Fatal(err)
	}
	m, err := r.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkMedia(t, srv, m, data, 5)
	seen.want(t, upstream.Plan{{From: 0, Size: 2 * mib}})
	noBuffersHeld(t, c)
}
