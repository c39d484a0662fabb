package upstream

import (
	"context"
	"errors"
	"time"
)

// ResumePoint describes an upload whose INIT (and perhaps some APPENDs)
// happened in an earlier life of the upload: another stream, another
// process. X keeps the session until it expires, so the upload goes on
// where X's acknowledgements end, with no new INIT.
type ResumePoint struct {
	MediaID  string
	MediaKey string
	Expires  time.Time
	// SegmentSize and Segments are the plan the upload started with.
	SegmentSize int64
	Segments    int
	// Plan, when set, is the upload's plan after X refused segments as
	// too large (see [WithReplanned]); it then replaces SegmentSize, and
	// Segments is the number of segments it cuts.
	Plan Plan
	// Acked marks the segments X acknowledged; nil means none.
	Acked []bool
	// Offset is where the bytes given to the Upload start: the end of the
	// run of acknowledged segments from 0, so a segment boundary of the
	// plan (or TotalBytes, when every segment is acknowledged).
	Offset int64
}

// ErrInterrupted is the error of an upload stopped with Interrupt.
var ErrInterrupted = errors.New("the upload was interrupted")

// Resume returns an Upload that continues the one described by r: the
// bytes it is given start at r.Offset, segments X already acknowledged are
// taken but not sent again, and Finish sends FINALIZE as for an upload
// from Begin. Nothing is sent to X by Resume itself.
func (c *Client) Resume(ctx context.Context, creds Credentials, p InitParams, r ResumePoint, opts ...UploadOption) (*Upload, error) {
	creds, err := c.creds(creds)
	if err != nil {
		return nil, err
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	plan := r.Plan.clone()
	if len(plan) == 0 {
		plan = uniformPlan(r.SegmentSize)
	}
	if !validMediaID(r.MediaID) {
		return nil, invalidf("resume point has no usable media id")
	}
	if err := plan.check(p.TotalBytes); err != nil {
		return nil, invalidf("resume point has no usable segment plan: %v", err)
	}
	next := plan.Count(p.TotalBytes)
	if r.Offset < p.TotalBytes {
		next = plan.Index(r.Offset)
	}
	switch {
	case r.Segments != plan.Count(p.TotalBytes):
		return nil, invalidf("resume point's plan cuts %d bytes into %d segments, not %d", p.TotalBytes, plan.Count(p.TotalBytes), r.Segments)
	case r.Offset < 0 || r.Offset > p.TotalBytes || r.Offset < p.TotalBytes && plan.Offset(next) != r.Offset:
		return nil, invalidf("resume offset %d is not a segment boundary of the plan", r.Offset)
	case len(r.Acked) > r.Segments:
		return nil, invalidf("resume point acknowledges more segments than the plan has")
	}
	u := &Upload{
		c: c, creds: creds, p: p, mediaID: r.MediaID, key: r.MediaKey, expires: r.Expires,
		plan: plan, segments: r.Segments, boundary: newBoundary(),
		slots: make(chan struct{}, c.cfg.Parallelism),
		acked: r.Acked,
	}
	u.received = r.Offset
	u.next = next
	for _, o := range opts {
		o(&u.opts)
	}
	u.ctx, u.cancel = context.WithCancelCause(ctx)
	c.log.Debug("upstream: resuming", "media_id", r.MediaID, "offset", r.Offset, "segments", r.Segments)
	return u, nil
}

// Interrupt stops the upload without finalizing it, so that it can be
// resumed: it takes no more bytes, drops the segment being filled, lets
// the APPENDs in flight (which hold all their bytes) finish for up to
// wait, then cancels the rest and waits for them. Segments acknowledged
// meanwhile are reported to WithSegmentDone's fn as usual. Interrupt may
// be called from any goroutine; Write, ReadFrom and Finish fail with
// ErrInterrupted afterwards.
func (u *Upload) Interrupt(wait time.Duration) {
	u.mu.Lock()
	if u.err == nil {
		u.err = ErrInterrupted
	}
	u.mu.Unlock()
	done := make(chan struct{})
	go func() { u.wg.Wait(); close(done) }()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-u.ctx.Done():
	}
	u.cancel(ErrInterrupted)
	<-done
	u.mu.Lock()
	u.dropRefusalsLocked()
	u.mu.Unlock()
	if u.wmu.TryLock() {
		u.dropIfFailed()
		u.wmu.Unlock()
	}
}
