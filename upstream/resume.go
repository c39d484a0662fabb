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
	// Acked marks the segments X acknowledged; nil means none.
	Acked []bool
	// Offset is where the bytes given to the Upload start: the end of the
	// run of acknowledged segments from 0, so a multiple of SegmentSize (or
	// TotalBytes, when every segment is acknowledged).
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
	switch {
	case !validMediaID(r.MediaID):
		return nil, invalidf("resume point has no usable media id")
	case r.SegmentSize < 1 || r.Segments < 1 || r.Segments > MaxSegments:
		return nil, invalidf("resume point has no usable segment plan")
	case int64(r.Segments-1)*r.SegmentSize >= p.TotalBytes || int64(r.Segments)*r.SegmentSize < p.TotalBytes:
		return nil, invalidf("resume point's plan (%d segments of %d bytes) does not fit %d bytes", r.Segments, r.SegmentSize, p.TotalBytes)
	case r.Offset < 0 || r.Offset > p.TotalBytes || r.Offset%r.SegmentSize != 0 && r.Offset != p.TotalBytes:
		return nil, invalidf("resume offset %d is not a segment boundary of the plan", r.Offset)
	case len(r.Acked) > r.Segments:
		return nil, invalidf("resume point acknowledges more segments than the plan has")
	}
	u := &Upload{
		c: c, creds: creds, p: p, mediaID: r.MediaID, key: r.MediaKey, expires: r.Expires,
		segSize: r.SegmentSize, segments: r.Segments, boundary: newBoundary(),
		slots: make(chan struct{}, c.cfg.Parallelism),
		acked: r.Acked,
	}
	u.received = r.Offset
	u.next = int((r.Offset + r.SegmentSize - 1) / r.SegmentSize)
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
	if u.wmu.TryLock() {
		u.dropIfFailed()
		u.wmu.Unlock()
	}
}
