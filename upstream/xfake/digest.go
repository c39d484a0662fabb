package xfake

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
)

// The digest of a media is built as its segments arrive: each commit feeds
// the next contiguous segments (index order) into a running SHA-256, so
// FINALIZE only hashes what is left, as quickly as X answers it. A re-sent
// segment that was already hashed marks the digest dirty; FINALIZE then
// hashes every segment again.
//
// Lock order: media.hashMu before media.mu.

// advanceHash feeds the segments that follow the hashed prefix into the
// digest, reading their files outside m.mu. When another goroutine is
// already advancing, that one (or FINALIZE) does the work.
func (st *store) advanceHash(m *media) {
	if !m.hashMu.TryLock() {
		return
	}
	defer m.hashMu.Unlock()
	for {
		m.mu.Lock()
		i := m.hashed
		_, ok := m.segs[i]
		if !ok || m.dirty || m.state != stateUploading {
			m.mu.Unlock()
			return
		}
		m.hashing = i
		m.mu.Unlock()
		err := st.hashSegment(m, i)
		m.mu.Lock()
		m.hashing = -1
		switch {
		case err != nil:
			m.dirty = true
		case !m.dirty:
			m.hashed = i + 1
		}
		m.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// hashSegment adds segment i to the digest. The caller holds m.hashMu.
func (st *store) hashSegment(m *media, i int) error {
	if m.digest == nil {
		m.digest = sha256.New()
		m.head = headWriter{max: sniffLen}
	}
	f, err := os.Open(st.segPath(m, i))
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.MultiWriter(m.digest, &m.head), f)
	return err
}

// finishHash completes the digest at FINALIZE and returns it with the first
// sniffLen bytes of the media. The caller holds m.hashMu and m.mu.
func (st *store) finishHash(m *media) (digest string, head []byte, err error) {
	if m.dirty {
		m.digest, m.hashed, m.dirty = nil, 0, false
	}
	for i := m.hashed; i < len(m.segs); i++ {
		if err := st.hashSegment(m, i); err != nil {
			return "", nil, err
		}
		m.hashed = i + 1
	}
	if m.digest == nil { // no segment: finalize refuses this earlier
		return hex.EncodeToString(sha256.New().Sum(nil)), nil, nil
	}
	return hex.EncodeToString(m.digest.Sum(nil)), m.head.buf, nil
}
