package main

import (
	"encoding"
	"errors"
	"io"
	"net/http"
	"sync"
)

// receive takes segment idx from r: straight into the hash when it is the
// next one and nobody else is hashing, else into a held buffer.
func (s *sink) receive(m *sinkMedia, idx int, r io.Reader) error {
	m.mu.Lock()
	if !m.finalized.IsZero() {
		m.mu.Unlock()
		return &errSink{http.StatusBadRequest, "BadRequest: Media already finalized"}
	}
	if idx != m.next || m.hashing {
		m.mu.Unlock()
		buf, n, err := s.read(r)
		if err != nil {
			return err
		}
		return s.hold(m, idx, buf, n)
	}
	m.hashing = true
	m.mu.Unlock()
	// The hash state is saved first, so a body that fails half-way (or is
	// too large) leaves it as it was and the segment can be sent again.
	saved, _ := m.h.(encoding.BinaryMarshaler).MarshalBinary()
	bp := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(m.h, io.LimitReader(r, s.maxSegment+1), *bp)
	copyBufs.Put(bp)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hashing = false
	switch {
	case err == nil && n > s.maxSegment:
		err = &errSink{http.StatusRequestEntityTooLarge, "Request Entity Too Large"}
	case err == nil && m.hashed+n > m.total:
		err = &errSink{http.StatusBadRequest, "Segments do not add up to provided total file size."}
	}
	if err != nil {
		_ = m.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(saved)
	} else {
		m.hashed += n
		m.next++
	}
	s.drain(m)
	return err
}

// copyBufs are the buffers segments stream through into the hash.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// read reads one whole segment into a pooled buffer.
func (s *sink) read(r io.Reader) (*[]byte, int, error) {
	bp := s.bufs.Get().(*[]byte)
	n, err := io.ReadFull(r, *bp)
	switch {
	case err == nil:
		s.bufs.Put(bp)
		return nil, 0, &errSink{http.StatusRequestEntityTooLarge, "Request Entity Too Large"}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return bp, n, nil
	}
	s.bufs.Put(bp)
	return nil, 0, err
}

// hold keeps an early segment until its turn, or hashes it now if its turn
// has come. It takes ownership of buf.
func (s *sink) hold(m *sinkMedia, idx int, buf *[]byte, n int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !m.finalized.IsZero():
		s.bufs.Put(buf)
		return &errSink{http.StatusBadRequest, "BadRequest: Media already finalized"}
	case idx < m.next:
		// Already hashed: a re-sent segment (a lost answer) cannot
		// replace bytes in a running hash; it is counted and dropped.
		m.resent++
		s.bufs.Put(buf)
		return nil
	}
	if old, ok := m.early[idx]; ok {
		m.resent++
		s.release(old, m.earlyN[idx])
	}
	h := s.held.Add(int64(n))
	if h > s.maxHeld {
		s.held.Add(-int64(n))
		s.bufs.Put(buf)
		return &errSink{http.StatusServiceUnavailable, "Too many segments held out of order."}
	}
	for p := s.heldPeak.Load(); h > p && !s.heldPeak.CompareAndSwap(p, h); p = s.heldPeak.Load() {
	}
	m.early[idx], m.earlyN[idx] = buf, n
	m.earlyPeak = max(m.earlyPeak, len(m.early))
	s.drain(m)
	return nil
}

func (s *sink) release(buf *[]byte, n int) {
	s.held.Add(-int64(n))
	s.bufs.Put(buf)
}

// drain hashes held segments whose turn has come. m.mu is held on entry
// and exit; it is let go while a segment is hashed, with hashing set so
// that segments arriving meanwhile are held and picked up here.
func (s *sink) drain(m *sinkMedia) {
	for !m.hashing {
		buf, ok := m.early[m.next]
		if !ok {
			return
		}
		n := m.earlyN[m.next]
		if m.hashed+int64(n) > m.total {
			return // FINALIZE will refuse the media
		}
		delete(m.early, m.next)
		delete(m.earlyN, m.next)
		m.hashing = true
		m.mu.Unlock()
		m.h.Write((*buf)[:n])
		m.mu.Lock()
		m.hashing = false
		m.hashed += int64(n)
		m.next++
		s.release(buf, n)
	}
}
