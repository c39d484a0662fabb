package upstream

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
)

// X's limit on the size of an APPEND is not documented on v2, and X's edge
// has answered 5 MiB segments with an empty 413. An APPEND answered 413 is
// therefore taken as "this segment is too large", not as a failure: the
// segment's bytes are set aside on disk (its buffer goes back at once),
// and once every APPEND in flight has ended, the writer cuts the refused
// segments, and everything after them, again at half the size of the
// smallest refused one: down to [MinReplanSegment], within [MaxSegments].
// The Client remembers the size for the uploads it plans afterwards.
//
// Only bytes the Upload still holds can be cut again: every segment from
// the first refused one to the one being filled must have been refused,
// except the last segment of the upload, which is often short enough for
// X to take while the full ones are refused: its buffer is kept after X
// took it until every APPEND before it ended, so that it can be cut again
// with the rest. An upload where X took another later segment, or that
// cannot be cut smaller, fails with X's 413.

// MinReplanSegment is the smallest segment a re-plan cuts: 1 MiB, the
// size X's documentation snippets send.
const MinReplanSegment = 1 << 20

// errReplan tells the writer that refused segments wait to be cut again.
// It never leaves the package.
var errReplan = errors.New("upstream: refused segments wait to be cut again")

// refusal is a segment X refused as too large: its bytes, set aside on
// disk, and X's answer.
type refusal struct {
	idx int
	sp  spilled
	err *APIError
}

// spilled is bytes set aside in a file: n bytes from off are still to be
// fed again.
type spilled struct {
	f      *os.File
	off, n int64
}

func (s *spilled) remove() {
	if s.f != nil {
		_ = s.f.Close()
		_ = os.Remove(s.f.Name())
		s.f = nil
	}
}

// refuse sets segment idx aside when X's answer err means it was too
// large, and reports whether it did. seg is the segment's bytes; the
// caller gives its buffer back afterwards.
func (u *Upload) refuse(idx int, seg []byte, err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusRequestEntityTooLarge || u.ctx.Err() != nil {
		return false
	}
	sp, ferr := u.setAside(seg)
	if ferr != nil {
		u.c.log.Warn("upstream: a segment X refused as too large could not be set aside to be cut again", "error", ferr.Error())
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil { // failed meanwhile: nothing will be cut again
		sp.remove()
		return true
	}
	u.refusals = append(u.refusals, refusal{idx: idx, sp: sp, err: ae})
	u.due.Store(true)
	return true
}

// setAside writes seg to a file in SpillDir.
func (u *Upload) setAside(seg []byte) (spilled, error) {
	f, err := os.CreateTemp(u.c.cfg.SpillDir, segFile+"*")
	if err != nil {
		return spilled{}, err
	}
	if _, err := f.Write(seg); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return spilled{}, err
	}
	return spilled{f: f, n: int64(len(seg))}, nil
}

// keptSegment is the last segment of an upload, which X took: its buffer
// and global slot are kept until the APPENDs before it ended, in case X
// refused one of those as too large (see keep). A last segment X
// acknowledged in an earlier life that was spilled to disk keeps its file
// instead (sp, with buf nil).
type keptSegment struct {
	idx int
	buf *[]byte
	n   int64
	sp  spilled
}

// keep holds on to the buffer of segment idx, which X took, when it is the
// last of a multi-segment upload, and reports whether it did: the caller
// then gives neither the buffer nor its slot back. Called on the APPEND
// path, while the plan cannot change.
func (u *Upload) keep(idx int, buf *[]byte, n int64) bool {
	return u.keepSegment(&keptSegment{idx: idx, buf: buf, n: n})
}

// keepSegment holds on to k as keep does; with k.buf nil, k.sp's file is
// then the kept segment's, not the caller's to remove.
func (u *Upload) keepSegment(k *keptSegment) bool {
	if k.idx == 0 || k.idx != u.segments-1 {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return false
	}
	u.kept = k
	return true
}

// releaseKeptLocked gives back the kept last segment's buffer and slot.
// Called with mu held.
func (u *Upload) releaseKeptLocked() {
	if k := u.kept; k != nil {
		u.kept = nil
		if k.buf == nil {
			k.sp.remove()
			return
		}
		u.c.release(k.buf)
		u.c.global.Release(1)
	}
}

// replanDue reports whether refused segments wait to be cut again. The
// writer checks it before it takes more bytes, so that a caller sending
// message by message has the refused segments cut again with its next
// message, not only once a segment fills.
func (u *Upload) replanDue() bool { return u.due.Load() }

// dropRefusalsLocked removes the files of refused segments. Called with mu
// held.
func (u *Upload) dropRefusalsLocked() {
	for i := range u.refusals {
		u.refusals[i].sp.remove()
	}
	u.refusals = nil
	u.due.Store(false)
	u.releaseKeptLocked()
}

// replan waits for the APPENDs in flight, cuts the refused segments and
// the bytes after them again, and feeds those bytes back into the upload,
// which sends them as it does any bytes. Called by the writer (wmu held)
// when replanDue; a segment refused while the bytes are fed again starts
// another round. It returns nil once every byte the upload was given is
// back in a segment, and the upload's error when it failed.
func (u *Upload) replan() error {
	var queue []spilled // bytes to feed again, in order
	defer func() {
		for i := range queue {
			queue[i].remove()
		}
	}()
	for {
		u.wg.Wait()
		u.mu.Lock()
		refs, failed := u.refusals, u.err
		u.refusals = nil
		u.due.Store(false)
		u.mu.Unlock()
		if failed != nil {
			for i := range refs {
				refs[i].sp.remove()
			}
			return failed
		}
		if len(refs) > 0 {
			front, err := u.recut(refs)
			if err != nil {
				u.fail(err)
				return err
			}
			queue = append(front, queue...)
		}
		for len(queue) > 0 {
			err := u.feed(&queue[0])
			if errors.Is(err, errReplan) {
				break
			}
			if err != nil {
				// The bytes still queued go with the queue: the upload
				// cannot go on (a BusyError from a buffer that did not
				// free up would otherwise leave it short of them).
				u.fail(err)
				return err
			}
			queue[0].remove()
			queue = queue[1:]
		}
		if len(queue) == 0 {
			return nil
		}
	}
}

// recut chooses the new plan from the first refused segment on and
// rewinds the writer to it. It returns the bytes to feed again: the
// refused segments in order, then the segment that was being filled.
func (u *Upload) recut(refs []refusal) ([]spilled, error) {
	slices.SortFunc(refs, func(a, b refusal) int { return a.idx - b.idx })
	out := make([]spilled, 0, len(refs)+1)
	for i := range refs {
		out = append(out, refs[i].sp)
	}
	giveUp := func(why string) ([]spilled, error) {
		for i := range out {
			out[i].remove()
		}
		ae := *refs[0].err
		ae.NotCut = why
		return nil, &ae
	}
	f := refs[0].idx
	for k, r := range refs {
		if r.idx != f+k {
			return giveUp(fmt.Sprintf("X took segment %d after refusing segment %d, and its bytes are no longer held", f+k, f))
		}
	}
	u.mu.Lock()
	kept := u.kept
	u.kept = nil
	u.mu.Unlock()
	if kept != nil {
		// The last segment, taken by X, is cut again with the rest when it
		// follows the refused ones.
		var err error
		var sp spilled
		follows := kept.idx == f+len(refs) && kept.idx == u.next-1
		switch {
		case kept.buf == nil && follows:
			sp = kept.sp
		case kept.buf == nil:
			kept.sp.remove()
		default:
			if follows {
				sp, err = u.setAside((*kept.buf)[:kept.n])
			}
			u.c.release(kept.buf)
			u.c.global.Release(1)
		}
		if err != nil {
			return giveUp("the last segment could not be set aside: " + err.Error())
		}
		if sp.f != nil {
			out = append(out, sp)
			refs = append(refs, refusal{idx: kept.idx})
		}
	}
	if f+len(refs) != u.next {
		return giveUp(fmt.Sprintf("X took segment %d after refusing segment %d, and its bytes are no longer held", f+len(refs), f))
	}
	basis := refs[0].sp.n
	for _, r := range refs {
		if r.err != nil { // refused, not the kept last segment
			basis = min(basis, r.sp.n)
		}
	}
	start := u.plan.Offset(f)
	rest := u.p.TotalBytes - start
	need := rest/int64(MaxSegments-f) + min(rest%int64(MaxSegments-f), 1)
	size := max(basis/2, MinReplanSegment, need)
	if size >= basis {
		return giveUp(fmt.Sprintf("X refused a segment of %d bytes, and segments are cut no smaller than %d bytes within %d segments", basis, max(MinReplanSegment, need), MaxSegments))
	}
	// The segment being filled goes to disk too, after the refused ones.
	u.fillMu.Lock()
	err := u.spillLocked()
	fill := spilled{f: u.disk, n: u.diskN}
	u.disk, u.diskN = nil, 0
	u.fillMu.Unlock()
	if err != nil {
		return giveUp("the segment being filled could not be set aside: " + err.Error())
	}
	if fill.f != nil {
		if fill.n > 0 {
			out = append(out, fill)
		} else {
			fill.remove()
		}
	}
	var held int64
	for _, s := range out {
		held += s.n
	}
	if start+held != u.received {
		return giveUp(fmt.Sprintf("%d bytes are held from byte %d, %d were received", held, start, u.received))
	}
	plan := append(slices.DeleteFunc(u.plan.clone(), func(r Run) bool { return r.From >= f }), Run{From: f, Size: size})
	u.mu.Lock()
	u.plan, u.segments = plan, plan.Count(u.p.TotalBytes)
	u.mu.Unlock()
	u.next, u.received = f, start
	if len(u.acked) > f {
		u.acked = u.acked[:f]
	}
	u.c.learnSegmentSize(size)
	u.c.tel.replans.Add(u.ctx, 1)
	u.c.log.Warn("upstream: X refused segments as too large (HTTP 413); the rest of the upload is cut smaller",
		slog.String("media_id", u.mediaID), slog.Int("segment", f), slog.Int("refused", len(refs)),
		slog.Int64("refused_bytes", basis), slog.Int64("segment_size", size), slog.Int("segments", u.segments))
	if u.opts.replanned != nil {
		u.opts.replanned(plan.clone())
	}
	return out, nil
}

// feed gives the bytes of s to the upload again, through a staging
// buffer. On errReplan, s keeps the bytes not yet taken.
func (u *Upload) feed(s *spilled) error {
	stage := staging.Get().(*[]byte)
	defer staging.Put(stage)
	for s.n > 0 {
		k, err := s.f.ReadAt((*stage)[:min(int64(stagingSize), s.n)], s.off)
		if k == 0 && err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			err = fmt.Errorf("reading a segment set aside to be cut again: %w", err)
			u.fail(err)
			return err
		}
		took, err := u.put((*stage)[:k])
		s.off += int64(took)
		s.n -= int64(took)
		if err != nil {
			return err
		}
	}
	return nil
}

// learnSegmentSize lowers the segment size the Client plans new uploads
// with to size, after X refused larger segments.
func (c *Client) learnSegmentSize(size int64) {
	for {
		cur := c.segCap.Load()
		if cur != 0 && cur <= size {
			return
		}
		if c.segCap.CompareAndSwap(cur, size) {
			c.log.Warn("upstream: new uploads are cut into smaller segments after X refused larger ones", slog.Int64("segment_size", size))
			return
		}
	}
}

// preferredSegment is the segment size new uploads are planned with:
// Config.SegmentSize, or what X's refusals taught.
func (c *Client) preferredSegment() int64 {
	if cap := c.segCap.Load(); cap > 0 && cap < c.cfg.SegmentSize {
		return cap
	}
	return c.cfg.SegmentSize
}

// WithReplanned registers fn, called each time the upload's remaining
// segments were cut smaller after X refused segments as too large, with
// the new plan. It runs on the goroutine calling Write, ReadFrom or
// Finish, after every APPEND in flight ended and before any segment of
// the new plan is sent: the segments before plan's last run keep their
// indexes, those from it on are numbered again.
func WithReplanned(fn func(plan Plan)) UploadOption {
	return func(o *uploadOptions) { o.replanned = fn }
}
