package upstream

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// UploadOption adjusts one upload.
type UploadOption func(*uploadOptions)

type uploadOptions struct {
	segmentDone func(index int, bytes int64)
	replanned   func(plan Plan)
}

// WithSegmentDone registers fn, called each time X acknowledged the APPEND
// of a segment (index from 0, bytes its length). Calls may come from
// several goroutines at once and in any order; all happen before Finish
// or Interrupt returns. fn runs on the APPEND path: a slow fn holds the
// segment's slot (which is how a durable record of the acknowledgement
// can come before the segment counts as sent). It must not call Abort,
// Interrupt or Finish.
func WithSegmentDone(fn func(index int, bytes int64)) UploadOption {
	return func(o *uploadOptions) { o.segmentDone = fn }
}

// Upload is one media upload in progress: INIT has been sent, and bytes
// given to Write or ReadFrom are cut into segments whose APPENDs start as
// soon as each segment is full. Write, ReadFrom and Finish must be called
// from one goroutine at a time; Abort and MediaID may be called from any.
// Every Upload must end with Finish or Abort, which release its context.
type Upload struct {
	c        *Client
	creds    Credentials
	p        InitParams
	opts     uploadOptions
	mediaID  string
	key      string
	expires  time.Time
	boundary string

	// plan is how the bytes are cut and segments how many there are. The
	// writer changes them (see replan.go) with mu held and reads them
	// without it.
	plan     Plan
	segments int

	ctx    context.Context // Begin's context; cancelled by Abort or failure
	cancel context.CancelCauseFunc
	slots  chan struct{} // per-upload APPEND slots (Parallelism)
	wg     sync.WaitGroup

	// writer state: owned by the goroutine calling Write/ReadFrom/Finish.
	wmu      sync.Mutex
	received int64 // bytes accepted in total
	next     int   // index of the segment being filled
	finished bool

	// The segment being filled: in buf (fill bytes), or spilled to disk
	// (diskN bytes), never both. Guarded by fillMu (see fill.go).
	fillMu    sync.Mutex
	buf       *[]byte
	fill      int64
	disk      *os.File
	diskN     int64
	spillable bool         // buf is partly filled and may be spilled
	fillStart atomic.Int64 // when buf was taken (Unix ns)

	// acked marks the segments X acknowledged in an earlier life of the
	// upload (see Client.Resume): their bytes are taken but not sent again.
	acked []bool

	// shared state
	mu       sync.Mutex
	err      error        // first failure
	refusals []refusal    // segments X refused as too large, to cut again
	kept     *keptSegment // the last segment, taken by X (see replan.go)
	due      atomic.Bool  // refusals is not empty
	retries  atomic.Int64 // retried attempts of this upload's calls
}

// Begin validates p, plans the segments and sends INIT. ctx governs the whole
// upload: cancelling it stops every in-flight call. creds nil means
// Config.Credentials.
func (c *Client) Begin(ctx context.Context, creds Credentials, p InitParams, opts ...UploadOption) (*Upload, error) {
	creds, err := c.creds(creds)
	if err != nil {
		return nil, err
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	if limit := c.MaxUploadBytes(); p.TotalBytes > limit {
		return nil, kindf(ErrSegmentTooLarge, "%d bytes is more than one upload to X can hold on %s: at most %d bytes (%d segments of %d bytes)",
			p.TotalBytes, c.cfg.Dialect, limit, MaxSegments, c.cfg.MaxSegmentSize)
	}
	segSize, segments, err := PlanSegments(p.TotalBytes, c.preferredSegment(), c.cfg.MaxSegmentSize)
	if err != nil {
		return nil, err
	}
	r, err := c.d.initReq(p)
	if err != nil {
		return nil, err
	}
	// An account known to need authorizing again fails here, before INIT.
	if pf, ok := creds.(interface{ preflight(context.Context) error }); ok {
		if err := pf.preflight(ctx); err != nil {
			return nil, err
		}
	}
	m, _, err := c.call(ctx, creds, r, callOpts{})
	if err != nil {
		return nil, err
	}
	if !validMediaID(m.ID) {
		return nil, errors.New("X answered INIT without a usable media id")
	}
	u := &Upload{
		c: c, creds: creds, p: p, mediaID: m.ID, key: m.Key, expires: m.ExpiresAt,
		plan: uniformPlan(segSize), segments: segments, boundary: newBoundary(),
		slots: make(chan struct{}, c.cfg.Parallelism),
	}
	for _, o := range opts {
		o(&u.opts)
	}
	u.ctx, u.cancel = context.WithCancelCause(ctx)
	c.log.Debug("upstream: INIT done", "media_id", m.ID, "segments", segments, "segment_size", segSize)
	return u, nil
}

// MediaID returns the media id X assigned at INIT.
func (u *Upload) MediaID() string { return u.mediaID }

// MediaKey returns the media key X assigned at INIT; may be empty.
func (u *Upload) MediaKey() string { return u.key }

// Expires returns when X forgets the upload session, as INIT said; zero
// when X did not say.
func (u *Upload) Expires() time.Time { return u.expires }

// Segments returns the size of the first run of the upload's plan (the
// size it was planned with, unless a re-plan began at segment 0) and the
// number of segments it needs now; Plan has the whole plan.
func (u *Upload) Segments() (size int64, count int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.plan[0].Size, u.segments
}

// Plan returns how the upload's bytes are cut now: one run unless X
// refused segments as too large and the rest was cut smaller.
func (u *Upload) Plan() Plan {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.plan.clone()
}

// Retries returns how many attempts of this upload's X calls (INIT
// excluded) were retried so far.
func (u *Upload) Retries() int64 { return u.retries.Load() }

// failure returns the upload's error, if any.
func (u *Upload) failure() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// fail records the first error and cancels the upload's in-flight work.
func (u *Upload) fail(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	err = u.err
	u.mu.Unlock()
	u.cancel(err)
}

// segLen is the length of segment i. Called by the writer.
func (u *Upload) segLen(i int) int64 { return u.plan.Len(i, u.p.TotalBytes) }

// Write copies p into segment buffers; each full segment's APPEND starts at
// once. It blocks while Parallelism APPENDs of this upload (or MaxInFlight
// across the Client) are in flight. Bytes beyond TotalBytes are refused
// with ErrTooManyBytes, which fails the upload; after any failure Write
// returns the upload's error.
func (u *Upload) Write(p []byte) (int, error) {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	defer u.dropIfFailed()
	if err := u.usable(); err != nil {
		return 0, err
	}
	return u.take(p)
}

// take puts p into the upload as Write does, cutting refused segments
// again (see replan.go) when X refused some as too large.
func (u *Upload) take(p []byte) (int, error) {
	if u.replanDue() {
		if err := u.replan(); err != nil {
			return 0, err
		}
	}
	n := 0
	for {
		k, err := u.put(p[n:])
		n += k
		if !errors.Is(err, errReplan) {
			return n, err
		}
		if err := u.replan(); err != nil {
			return n, err
		}
	}
}

func (u *Upload) usable() error {
	if err := u.failure(); err != nil {
		return err
	}
	if err := context.Cause(u.ctx); err != nil {
		return err
	}
	if u.finished {
		return errFinished
	}
	return nil
}

func (u *Upload) tooMany() error {
	err := kindf(ErrTooManyBytes, "received more than the declared %d bytes", u.p.TotalBytes)
	u.fail(err)
	return err
}

// maybeDispatch starts the APPEND of the current segment once it is full.
// A segment that was spilled is brought back into a buffer first. It
// blocks for a per-upload slot, which is what pauses the caller while
// Parallelism APPENDs are in flight.
func (u *Upload) maybeDispatch() error {
	u.fillMu.Lock()
	full := (u.buf != nil || u.disk != nil) && u.fillLocked() == u.segLen(u.next)
	onDisk := u.disk != nil
	if full {
		u.spillable = false // complete: it waits to be sent, not for bytes
	}
	u.fillMu.Unlock()
	if !full {
		return nil
	}
	if err := u.failure(); err != nil {
		return err // interrupted: a full segment is dropped like a partial one
	}
	if u.replanDue() {
		return errReplan // the full segment is cut again with the refused ones
	}
	idx := u.next
	acked := idx < len(u.acked) && u.acked[idx]
	if onDisk && !acked {
		if err := u.acquire(); err != nil {
			return err
		}
		u.fillMu.Lock()
		err := u.loadLocked()
		u.spillable = false
		u.fillMu.Unlock()
		if err != nil {
			u.fail(err)
			return u.failure()
		}
	}
	if acked {
		// X has this segment from an earlier life of the upload. The last
		// one is kept, as when X takes it in this life (see keep): its
		// buffer, or its spill file.
		u.fillMu.Lock()
		switch {
		case onDisk:
			if u.keepSegment(&keptSegment{idx: idx, sp: spilled{f: u.disk, n: u.diskN}}) {
				u.disk, u.diskN = nil, 0
			}
		case u.buf != nil && u.keep(idx, u.buf, u.fill):
			u.c.filling(u, false)
			u.buf, u.fill, u.spillable = nil, 0, false
		}
		u.dropLocked()
		u.fillMu.Unlock()
		u.next++
		return nil
	}
	select {
	case u.slots <- struct{}{}:
	case <-u.ctx.Done():
		return u.stopped()
	}
	if u.replanDue() { // refused while this waited for its slot
		<-u.slots
		return errReplan
	}
	u.fillMu.Lock()
	buf, n := u.buf, u.fill
	u.buf, u.fill = nil, 0
	u.c.filling(u, false)
	u.fillMu.Unlock()
	u.next++
	u.wg.Add(1)
	u.c.tel.segInFlight.Add(u.ctx, 1)
	go u.appendSegment(buf, idx, n)
	return nil
}

// stopped returns the reason the upload's context ended.
func (u *Upload) stopped() error {
	if err := u.failure(); err != nil {
		return err
	}
	return context.Cause(u.ctx)
}

// appendSegment sends one APPEND with retries and releases its buffer and
// slots when done.
//
// A segment X refuses as too large (413) is set aside to be cut again
// (see replan.go) instead of failing the upload.
func (u *Upload) appendSegment(buf *[]byte, idx int, n int64) {
	defer u.wg.Done()
	kept := false
	defer func() {
		if !kept {
			u.c.release(buf)
			u.c.global.Release(1)
		}
		u.c.tel.segInFlight.Add(u.ctx, -1)
		<-u.slots
	}()
	r := u.c.d.appendReq(u.mediaID, idx, (*buf)[:n], u.boundary)
	r.mediaID, r.segBytes = u.mediaID, n
	if _, _, err := u.c.call(u.ctx, u.creds, r, callOpts{retries: &u.retries}); err != nil {
		if !u.refuse(idx, (*buf)[:n], err) {
			u.fail(err) // the error names the segment; the first failure wins
		}
		return
	}
	u.c.tel.bytesSent.Add(u.ctx, n)
	kept = u.keep(idx, buf, n)
	if u.opts.segmentDone != nil {
		u.opts.segmentDone(idx, n)
	}
}

// dropIfFailed lets go of the segment being filled (its buffer, or its
// spill file) once the upload has failed. Called with wmu held, on the way
// out of Write/ReadFrom/Finish.
func (u *Upload) dropIfFailed() {
	if u.failure() != nil || u.ctx.Err() != nil {
		u.fillMu.Lock()
		u.dropLocked()
		u.fillMu.Unlock()
		u.mu.Lock()
		u.dropRefusalsLocked()
		u.mu.Unlock()
	}
}

// Abort stops the upload: in-flight APPENDs are cancelled and awaited, and
// buffers go back to the pool. err is recorded as the upload's error (nil
// means ErrAborted). Abort is safe to call from any goroutine, more than
// once, and after Finish. A ReadFrom blocked inside its reader returns when
// the reader does (close it to unblock); its buffer is released then. The
// media id is left to expire on X's side: X has no call to delete an
// unfinished upload.
func (u *Upload) Abort(err error) {
	if err == nil {
		err = ErrAborted
	}
	u.fail(err)
	u.wg.Wait()
	u.mu.Lock()
	u.dropRefusalsLocked()
	u.mu.Unlock()
	if u.wmu.TryLock() {
		u.dropIfFailed()
		u.wmu.Unlock()
	}
}
