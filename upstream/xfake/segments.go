package xfake

import (
	"errors"
	"io"
	"os"
	"time"
)

// errSpillTooLarge reports a segment over MaxSegment.
var errSpillTooLarge = errors.New("xfake: segment too large")

// spill streams r into a new temp file in the spill directory, without ever
// holding more than io.Copy's buffer in memory. It fails with
// errSpillTooLarge (and removes the file) when r holds more than limit bytes.
func (st *store) spill(r io.Reader, limit int64) (path string, n int64, err error) {
	f, err := os.CreateTemp(st.dir, "part-*")
	if err != nil {
		return "", 0, err
	}
	n, err = io.Copy(f, io.LimitReader(r, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > limit {
		err = errSpillTooLarge
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", 0, err
	}
	return f.Name(), n, nil
}

// beginAppend counts one more APPEND in flight on the media with id. The
// caller must call endAppend once the segment is committed or abandoned.
func (st *store) beginAppend(id string) (*media, *opError) {
	m, oerr := st.lock(id)
	if oerr != nil {
		return nil, oerr
	}
	defer m.mu.Unlock()
	if m.state != stateUploading {
		return nil, opErr(errFinalized)
	}
	m.active++
	m.maxActive = max(m.maxActive, m.active)
	if m.firstAppend.IsZero() {
		m.firstAppend = st.now()
	}
	n := st.active.Add(1)
	for {
		old := st.maxActive.Load()
		if n <= old || st.maxActive.CompareAndSwap(old, n) {
			break
		}
	}
	return m, nil
}

func (st *store) endAppend(m *media) {
	m.mu.Lock()
	m.active--
	m.mu.Unlock()
	st.active.Add(-1)
}

// commit makes the spilled file tmp segment idx of m, replacing an earlier
// segment with that index. The rename happens under m.mu, so concurrent
// re-sends of one index leave exactly one consistent winner.
func (st *store) commit(m *media, idx int, tmp string, n int64) *opError {
	m.mu.Lock()
	switch {
	case m.state == stateFinalized:
		m.mu.Unlock()
		_ = os.Remove(tmp)
		return opErr(errFinalized)
	case m.state == stateDeleted || m.expired(st.now()):
		m.mu.Unlock()
		_ = os.Remove(tmp)
		return opErr(errUnknownMedia)
	}
	if err := os.Rename(tmp, st.segPath(m, idx)); err != nil {
		m.mu.Unlock()
		_ = os.Remove(tmp)
		return opErr(errUnknownMedia)
	}
	m.segs[idx] = n
	m.appends++
	if idx < m.hashed || idx == m.hashing {
		m.dirty = true
	}
	m.mu.Unlock()
	st.advanceHash(m)
	return nil
}

// Synchronous-path limits (FACTS §2): without media_category X refuses to
// finalize large videos synchronously; images are capped at 5 MB and GIFs at
// 5 MB (sync) or 15 MB (with a category).
const (
	maxSyncVideo = 15 << 20
	maxImage     = 5 << 20
	maxAsyncGIF  = 15 << 20
)

// finalize checks the segments, hashes and sniffs the assembled bytes in
// segment order, and marks the media finalized. Spilled segments are removed
// once hashed: only the digest and the sniffed header are kept.
func (st *store) finalize(id string, mediaTTL time.Duration) (view, *opError) {
	m, oerr := st.lock(id)
	if oerr != nil {
		return view{}, oerr
	}
	// Take hashMu first (lock order), then mu again.
	m.mu.Unlock()
	m.hashMu.Lock()
	defer m.hashMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.state {
	case stateDeleted:
		return view{}, opErr(errUnknownMedia)
	case stateFinalized:
		return view{}, opErr(errFinalized)
	}
	var sum int64
	for i := range len(m.segs) {
		n, ok := m.segs[i]
		if !ok {
			return view{}, opErr(errSegments)
		}
		sum += n
	}
	if sum != m.total || sum == 0 {
		return view{}, opErr(errSegments)
	}
	if oerr := m.checkSize(sum); oerr != nil {
		return view{}, oerr
	}
	digest, head, err := st.finishHash(m)
	if err != nil {
		return view{}, opErr(errUnknownMedia)
	}
	sn := sniff(m.mediaType, head)
	if !m.async && !sn.ok {
		return view{}, opErr(errInvalidMedia)
	}
	st.removeSegmentsLocked(m)
	now := st.now()
	m.state = stateFinalized
	m.finalized = now
	m.mediaExpires = now.Add(mediaTTL)
	m.size = sum
	m.sha = digest
	m.invalid = !sn.ok
	m.width, m.height = sn.width, sn.height
	return st.viewLocked(m, now), nil
}

// checkSize applies X's size rules for the path FINALIZE will take.
func (m *media) checkSize(size int64) *opError {
	switch {
	case isVideo(m.mediaType) && m.category == "" && size > maxSyncVideo:
		return opErr(errLargeSync)
	case m.mediaType == "image/gif" && m.category == "" && size > maxImage:
		return &opError{kind: errFileSize, limit: maxImage}
	case m.mediaType == "image/gif" && m.async && size > maxAsyncGIF:
		return &opError{kind: errFileSize, limit: maxAsyncGIF}
	case m.mediaType != "image/gif" && isImageType(m.mediaType) && size > maxImage:
		return &opError{kind: errFileSize, limit: maxImage}
	}
	return nil
}

// headWriter keeps the first max bytes written to it.
type headWriter struct {
	buf []byte
	max int
}

func (w *headWriter) Write(p []byte) (int, error) {
	if room := w.max - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
