package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// Segment buffers are the Client's scarce memory: MaxInFlight of them,
// each being filled or in flight. A slow caller must not pin one for as
// long as it trickles: when another upload waits for a buffer, a segment
// that has been filling for SpillAfter is spilled, its bytes written to a
// file in SpillDir and its buffer given to the waiter. The segment then
// fills on disk, needing no memory, and takes a buffer again only once it
// is complete, to be sent. A writer that finds no buffer within
// BufferWait fails with a *BusyError (retry later) instead of hanging.
//
// The fill state (buf, fill, disk) is guarded by fillMu, which the writer
// holds only while it copies bytes in (and during a read straight into the
// buffer, see ReadFrom); the reclaimer spills under it.

// segFile prefixes the files of spilled segments.
const segFile = "mediagw-segment-"

// BusyError reports that no segment buffer freed up within
// Config.BufferWait: mediagw is at its memory bound.
type BusyError struct {
	Wait     time.Duration
	InFlight int
}

// Error implements error.
func (e *BusyError) Error() string {
	return fmt.Sprintf("mediagw is at its memory bound: no segment buffer freed up within %s (%d in use); try again shortly", e.Wait, e.InFlight)
}

// StatusCode returns 429: retry after a while.
func (e *BusyError) StatusCode() int { return http.StatusTooManyRequests }

// RetryDelay suggests when to retry.
func (e *BusyError) RetryDelay() time.Duration { return time.Second }

var errBufferWait = &BusyError{}

// acquire takes a global buffer slot, FIFO among waiters. While it waits,
// it spills slow segments of other uploads; it gives up after BufferWait.
func (u *Upload) acquire() error {
	c := u.c
	if c.global.TryAcquire(1) {
		return nil
	}
	ctx, cancel := context.WithTimeoutCause(u.ctx, c.cfg.BufferWait, errBufferWait)
	defer cancel()
	done := make(chan struct{})
	go c.reclaimWhile(u, done)
	err := c.global.Acquire(ctx, 1)
	close(done)
	if err == nil {
		return nil
	}
	if u.ctx.Err() == nil {
		return &BusyError{Wait: c.cfg.BufferWait, InFlight: c.cfg.MaxInFlight}
	}
	return u.stopped()
}

// newBuffer gives the upload a buffer for the segment being filled.
// Called with fillMu held, after acquire.
func (u *Upload) newBufferLocked() {
	size, _ := u.plan.at(u.next)
	switch {
	case u.segments == 1:
		size.Size = u.p.TotalBytes // a small file needs no full-size buffer
	case size.Size < u.c.cfg.SegmentSize:
		// Cut smaller after a refusal: a pooled buffer serves, and the
		// bound stays MaxInFlight buffers of SegmentSize.
		size.Size = u.c.cfg.SegmentSize
	}
	u.buf = u.c.buffer(size.Size)
	u.fill = 0
	u.spillable = true
	u.fillStart.Store(time.Now().UnixNano())
	u.c.filling(u, true)
}

// ready makes sure the segment being filled has somewhere to go: a buffer
// (acquired now, before any byte arrives) or its spill file.
func (u *Upload) ready() error {
	u.fillMu.Lock()
	has := u.buf != nil || u.disk != nil
	u.fillMu.Unlock()
	if has {
		return nil
	}
	if err := u.acquire(); err != nil {
		return err
	}
	u.fillMu.Lock()
	if u.buf == nil && u.disk == nil {
		u.newBufferLocked()
	} else {
		u.c.global.Release(1) // a spill file appeared meanwhile: not ours
	}
	u.fillMu.Unlock()
	return nil
}

// Ready acquires a buffer for the next bytes before they are received, so
// that a caller receiving messages (gRPC) holds one only when there is
// somewhere to put it: a message received while every buffer is out would
// be memory beyond the bound. It blocks as Write does.
func (u *Upload) Ready() error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	if err := u.usable(); err != nil {
		return err
	}
	if u.replanDue() {
		if err := u.replan(); err != nil {
			return err
		}
	}
	if u.received == u.p.TotalBytes {
		return nil
	}
	return u.ready()
}

// put copies p into the segment being filled, in memory or on disk,
// dispatching full segments. It returns how many bytes it took.
func (u *Upload) put(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if u.received == u.p.TotalBytes {
			return n, u.tooMany()
		}
		if err := u.ready(); err != nil {
			return n, err
		}
		u.fillMu.Lock()
		room := u.segLen(u.next) - u.fillLocked()
		k := int(min(int64(len(p)), room))
		var err error
		if u.disk != nil {
			_, err = u.disk.Write(p[:k])
			u.diskN += int64(k)
		} else {
			copy((*u.buf)[u.fill:], p[:k])
			u.fill += int64(k)
		}
		u.fillMu.Unlock()
		if err != nil {
			u.fail(fmt.Errorf("writing a spilled segment: %w", err))
			return n, u.failure()
		}
		u.received += int64(k)
		n += k
		p = p[k:]
		if err := u.maybeDispatch(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// fillLocked is how much of the segment being filled is there.
func (u *Upload) fillLocked() int64 {
	if u.disk != nil {
		return u.diskN
	}
	return u.fill
}

// spillLocked moves the segment being filled out of memory: its bytes to
// a file (none when it is still empty), its buffer and slot back to the
// Client. Called by the reclaimer with fillMu held.
func (u *Upload) spillLocked() error {
	if u.buf == nil {
		return nil
	}
	if u.fill > 0 {
		f, err := os.CreateTemp(u.c.cfg.SpillDir, segFile+"*")
		if err != nil {
			return err
		}
		if _, err := f.Write((*u.buf)[:u.fill]); err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			return err
		}
		u.disk, u.diskN = f, u.fill
		u.c.tel.spills.Add(u.ctx, 1)
	}
	u.c.filling(u, false)
	u.c.release(u.buf)
	u.c.global.Release(1)
	u.buf, u.fill, u.spillable = nil, 0, false
	return nil
}

// loadLocked brings a complete spilled segment back into a buffer, to be
// sent. Called with fillMu held and a global slot acquired.
func (u *Upload) loadLocked() error {
	f, n := u.disk, u.diskN
	u.disk, u.diskN = nil, 0
	defer func() { _ = f.Close(); _ = os.Remove(f.Name()) }()
	u.newBufferLocked()
	if _, err := f.ReadAt((*u.buf)[:n], 0); err != nil && err != io.EOF {
		return fmt.Errorf("reading a spilled segment: %w", err)
	}
	u.fill = n
	return nil
}

// dropLocked lets go of the segment being filled. Called with fillMu held.
func (u *Upload) dropLocked() {
	if u.buf != nil {
		u.c.filling(u, false)
		u.c.release(u.buf)
		u.c.global.Release(1)
		u.buf, u.fill, u.spillable = nil, 0, false
	}
	if u.disk != nil {
		_ = u.disk.Close()
		_ = os.Remove(u.disk.Name())
		u.disk, u.diskN = nil, 0
	}
}

// filling registers (or unregisters) u as holding a buffer being filled,
// a candidate for spilling.
func (c *Client) filling(u *Upload, on bool) {
	c.fillingMu.Lock()
	defer c.fillingMu.Unlock()
	if on {
		c.fillers[u] = struct{}{}
	} else {
		delete(c.fillers, u)
	}
}

// reclaimWhile spills slow segments for waiter until done is closed.
func (c *Client) reclaimWhile(waiter *Upload, done <-chan struct{}) {
	t := time.NewTicker(max(c.cfg.SpillAfter/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		c.reclaim(waiter)
		select {
		case <-t.C:
		case <-done:
			return
		}
	}
}

// reclaim spills the segment that has been filling longest, if it has
// been filling for SpillAfter, and reports whether it freed a buffer.
func (c *Client) reclaim(waiter *Upload) bool {
	slow := time.Now().Add(-c.cfg.SpillAfter).UnixNano()
	c.fillingMu.Lock()
	var oldest *Upload
	var since int64
	for u := range c.fillers {
		if start := u.fillStart.Load(); u != waiter && start <= slow && (oldest == nil || start < since) {
			oldest, since = u, start
		}
	}
	c.fillingMu.Unlock()
	if oldest == nil || !oldest.fillMu.TryLock() {
		return false // none slow enough, or its writer is copying in now
	}
	defer oldest.fillMu.Unlock()
	if !oldest.spillable || oldest.fillStart.Load() > slow {
		return false
	}
	if err := oldest.spillLocked(); err != nil {
		// Not tried again for this segment (its next one may be): a full
		// disk costs one attempt and one log line per segment, not one
		// per tick of every waiter.
		oldest.spillable = false
		c.log.Warn("upstream: spilling a slow segment failed; it stays in memory", "error", err.Error())
		return false
	}
	return true
}

// staging buffers take the reads of a slow reader, so that a read that
// blocks for long does not hold a segment buffer.
var staging = sync.Pool{New: func() any { b := make([]byte, stagingSize); return &b }}

// stagingSize is the staging buffer's size; a read that fills it shows the
// reader is ahead of us, and reads go straight into segment buffers.
const stagingSize = 64 << 10

// directFloor is the read below which a reader counts as slow again.
const directFloor = 16 << 10
