package inspect

import (
	"encoding/binary"
	"fmt"
)

// Buffering caps for the ISO BMFF boxes whose bodies are parsed; every
// other top-level box (mdat first of all) is skipped by counting.
const (
	// MaxMoovBytes is the largest moov box that is buffered and parsed. A
	// bigger moov is skipped and its values stay unknown (MoovSkipped).
	MaxMoovBytes = 32 << 20
	// MaxMoofBytes is the largest moof box that is buffered and parsed; a
	// bigger one leaves a fragmented movie's duration and frame rate
	// unknown.
	MaxMoofBytes = 4 << 20
	maxFtypBytes = 4 << 10
)

// bmff walks the top-level boxes of an ISO BMFF stream (ISO/IEC 14496-12
// §4.2): it keeps an 8 or 16 byte header, buffers ftyp, moov and moof
// bodies up to their caps and skips everything else without looking at it.
type bmff struct {
	r    *Report
	off  int64 // offset of the next byte in the stream
	hdr  [16]byte
	nhdr int

	typ      string // the box being skipped or buffered
	boxStart int64
	boxSize  int64 // -1: to the end of the stream
	skip     int64 // body bytes left to skip; -1: skip to the end
	want     int   // body length being buffered (buffering when > 0)
	buf      []byte
	stopped  bool // the box structure broke: nothing more is parsed

	boxes   int  // top-level boxes seen
	sawMdat bool // an mdat came before the moov
	movie   movie
	moovOK  bool // the moov was parsed
	fragBad bool // a moof could not be parsed: fragment sums are partial
}

func newBMFF(r *Report) *bmff { return &bmff{r: r} }

func (m *bmff) write(p []byte) {
	for len(p) > 0 && !m.stopped {
		switch {
		case m.skip < 0:
			m.off += int64(len(p))
			return
		case m.skip > 0:
			n := int64(len(p))
			if n > m.skip {
				n = m.skip
			}
			m.skip -= n
			m.off += n
			p = p[n:]
		case m.want > 0:
			n := min(m.want-len(m.buf), len(p))
			m.buf = append(m.buf, p[:n]...)
			m.off += int64(n)
			p = p[n:]
			if len(m.buf) == m.want {
				m.want = 0
				m.body(m.typ, m.buf)
				if cap(m.buf) > MaxMoofBytes {
					m.buf = nil // keep a moof-sized buffer at most
				}
			}
		default:
			p = m.header(p)
		}
	}
}

// header collects a box header from p and returns the rest of p.
func (m *bmff) header(p []byte) []byte {
	need := 8
	if m.nhdr >= 8 && binary.BigEndian.Uint32(m.hdr[:4]) == 1 {
		need = 16
	}
	n := copy(m.hdr[m.nhdr:need], p)
	m.nhdr += n
	m.off += int64(n)
	p = p[n:]
	if m.nhdr < need {
		return p
	}
	if need == 8 && binary.BigEndian.Uint32(m.hdr[:4]) == 1 {
		return p // a 64-bit size follows
	}
	hlen := int64(m.nhdr)
	m.nhdr = 0
	m.boxStart = m.off - hlen
	m.typ = string(m.hdr[4:8])
	size := int64(binary.BigEndian.Uint32(m.hdr[:4]))
	if hlen == 16 {
		u := binary.BigEndian.Uint64(m.hdr[8:16])
		if u > 1<<62 {
			m.fail(fmt.Sprintf("box %q at offset %d declares an impossible size %d", printable(m.typ), m.boxStart, u))
			return nil
		}
		size = int64(u)
	}
	if !printableType(m.hdr[4:8]) {
		m.fail(fmt.Sprintf("bytes at offset %d are not a box header", m.boxStart))
		return nil
	}
	if size != 0 && size < hlen {
		m.fail(fmt.Sprintf("box %q at offset %d declares %d bytes, less than its header", m.typ, m.boxStart, size))
		return nil
	}
	m.boxes++
	m.top(size, hlen)
	return p
}

// top decides what happens to the body of the top-level box just read.
func (m *bmff) top(size, hlen int64) {
	body := size - hlen
	if size == 0 { // to the end of the stream
		m.boxSize = -1
		body = -1
		if t := m.r.TotalBytes; t >= 0 {
			body = t - m.off
		}
	} else {
		m.boxSize = size
	}
	if m.boxes == 1 && m.typ != "ftyp" {
		m.r.Format = FormatMOV // QuickTime files may start without ftyp
	}
	buffer := func(limit int64) bool {
		if body >= 0 && body <= limit {
			m.want = int(body)
			if cap(m.buf) >= m.want {
				m.buf = m.buf[:0]
			} else {
				m.buf = make([]byte, 0, m.want)
			}
			if m.want == 0 {
				m.body(m.typ, nil)
			}
			return true
		}
		return false
	}
	switch m.typ {
	case "ftyp":
		if buffer(maxFtypBytes) {
			return
		}
	case "moov":
		if m.r.MoovOffset < 0 {
			m.r.MoovOffset = m.boxStart
			m.r.Faststart = !m.sawMdat
		}
		if buffer(MaxMoovBytes) {
			return
		}
		m.r.MoovSkipped = true
	case "moof":
		m.r.Fragmented = true
		if buffer(MaxMoofBytes) {
			return
		}
		m.fragBad = true
	case "mdat":
		if m.r.MoovOffset < 0 {
			m.sawMdat = true
		}
	}
	m.skip = body
	if body < 0 {
		m.skip = -1
	}
}

// body handles a buffered top-level box.
func (m *bmff) body(typ string, b []byte) {
	switch typ {
	case "ftyp":
		if len(b) >= 4 {
			m.r.Brand = string(b[:4])
			if m.r.Brand == "qt  " {
				m.r.Format = FormatMOV
			}
		}
	case "moov":
		if m.moovOK {
			return // a second moov is ignored
		}
		if err := m.movie.parseMoov(b); err != "" {
			m.problem(err)
		}
		m.moovOK = true
		m.publish()
	case "moof":
		if err := m.movie.parseMoof(b); err != "" {
			m.problem(err)
			m.fragBad = true
		}
		if m.moovOK {
			m.publish()
		}
	}
}

func (m *bmff) finish() {
	switch {
	case m.stopped:
	case m.nhdr > 0:
		m.problem(fmt.Sprintf("truncated: the stream ends inside a box header at offset %d", m.off-int64(m.nhdr)))
	case m.want > 0 || m.skip > 0:
		m.problem(fmt.Sprintf("truncated: box %q at offset %d declares %d bytes, the stream ends after %d",
			m.typ, m.boxStart, m.boxSize, m.off-m.boxStart))
	}
	if !m.moovOK && !m.r.MoovSkipped {
		m.problem("no moov box: the movie has no header")
	}
	if m.moovOK {
		m.publish()
	}
	if m.r.Fragmented || !m.moovOK {
		m.r.Complete = m.moovOK && !m.fragBad
	}
}

// publish copies what the movie knows into the report.
func (m *bmff) publish() {
	end := m.r.Ended && !m.fragBad
	m.movie.report(m.r, end)
	if !m.r.Fragmented {
		m.r.Complete = true
	}
}

func (m *bmff) problem(s string) {
	if m.r.Problem == "" {
		m.r.Problem = s
	}
}

func (m *bmff) fail(s string) {
	m.problem(s)
	m.stopped = true
}

func printableType(t []byte) bool {
	for _, c := range t {
		if c < 0x20 || c > 0x7e {
			if c != 0xa9 { // © starts QuickTime metadata atoms
				return false
			}
		}
	}
	return true
}

func printable(s string) string {
	if printableType([]byte(s)) {
		return s
	}
	return fmt.Sprintf("%x", s)
}
