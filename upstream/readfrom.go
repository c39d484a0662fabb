package upstream

import (
	"errors"
	"io"
)

// ReadFrom reads r into segment buffers until EOF, dispatching full
// segments as Write does. It implements io.ReaderFrom, so io.Copy(u, r)
// needs no intermediate buffer: while r delivers faster than it is read,
// reads go straight into the segment buffer. A slow r (a read that
// returns little) is read through a small staging buffer instead, so that
// the segment buffer is not held by a read that blocks, and a slow
// segment can be spilled (see fill.go). A reader that ends early is not an
// error here: Finish reports the shortfall.
func (u *Upload) ReadFrom(r io.Reader) (int64, error) {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	defer u.dropIfFailed()
	if err := u.usable(); err != nil {
		return 0, err
	}
	var n int64
	var stage *[]byte
	defer func() {
		if stage != nil {
			staging.Put(stage)
		}
	}()
	direct := false
	for {
		if u.received == u.p.TotalBytes {
			// io.ReaderFrom reads to EOF: anything more is too much.
			var one [1]byte
			k, err := io.ReadFull(r, one[:])
			if k > 0 {
				return n, u.tooMany()
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return n, nil
			}
			return n, err
		}
		if u.replanDue() {
			if err := u.replan(); err != nil {
				return n, err
			}
		}
		var k int
		var err error
		if direct {
			k, err = u.readDirect(r)
			direct = k >= directFloor
			if k < 0 {
				return n, u.failure()
			}
		} else {
			if stage == nil {
				stage = staging.Get().(*[]byte)
			}
			room := int(min(int64(stagingSize), u.p.TotalBytes-u.received))
			k, err = r.Read((*stage)[:room])
			if k < 0 || k > room {
				u.fail(errors.New("the media reader returned an invalid count"))
				return n, u.failure()
			}
			if k > 0 {
				if _, perr := u.take((*stage)[:k]); perr != nil {
					return n + int64(k), perr
				}
			}
			if k == stagingSize {
				direct = true
				staging.Put(stage)
				stage = nil
			}
		}
		n += int64(k)
		switch {
		case err == io.EOF:
			return n, nil
		case err != nil:
			return n, err
		}
	}
}

// readDirect reads r straight into the segment buffer and dispatches it
// when full. It returns -1 when the upload failed.
func (u *Upload) readDirect(r io.Reader) (int, error) {
	if err := u.ready(); err != nil {
		return 0, err
	}
	u.fillMu.Lock()
	if u.buf == nil { // spilled meanwhile: read through staging
		u.fillMu.Unlock()
		return 0, nil
	}
	seg := (*u.buf)[:u.segLen(u.next)]
	k, err := r.Read(seg[u.fill:])
	if k < 0 || int64(k) > int64(len(seg))-u.fill {
		u.fillMu.Unlock()
		u.fail(errors.New("the media reader returned an invalid count"))
		return -1, nil
	}
	u.fill += int64(k)
	u.fillMu.Unlock()
	u.received += int64(k)
	derr := u.maybeDispatch()
	if errors.Is(derr, errReplan) {
		derr = u.replan()
	}
	if derr != nil {
		return k, derr
	}
	return k, err
}
