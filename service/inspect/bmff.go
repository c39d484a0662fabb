package inspect

import (
	"encoding/binary"
	"fmt"
)

// Caps on the box bodies the inspector reads; every other box (mdat first
// of all, but also stsz, stco, ctts and the rest of a sample table) is
// skipped by counting, and containers (moov, trak, mdia, minf, stbl,
// mvex, moof, traf) are walked as their bytes pass, never buffered.
const (
	// MaxTableBytes bounds a sample table read whole: stts (the frame
	// rate) and trun (a fragment's durations). A bigger one is skipped and
	// its values stay unknown (Report.Oversized).
	MaxTableBytes = 4 << 20
	// maxBoxBytes bounds the other boxes read (ftyp, mvhd, tkhd, mdhd,
	// hdlr, stsd, mehd, trex, tfhd).
	maxBoxBytes = 1 << 20
	// maxDepth bounds the nesting walked; deeper boxes are skipped.
	maxDepth = 16
	// keepBytes is the largest buffer kept between boxes.
	keepBytes = 64 << 10
)

// bmff walks an ISO BMFF stream (ISO/IEC 14496-12 §4.2) box by box: it
// keeps an 8 or 16 byte header, a stack of the containers it is inside,
// and the body of one box it reads.
type bmff struct {
	r    *Report
	off  int64 // offset of the next byte in the stream
	hdr  [16]byte
	nhdr int

	stack    []frame
	typ      string // the box being skipped or read
	boxStart int64
	boxSize  int64 // -1: to the end of the stream
	skip     int64 // body bytes left to skip; -1: skip to the end
	want     int   // body length being read (reading when > 0)
	buf      []byte
	stopped  bool // the box structure broke: nothing more is parsed

	boxes    int  // top-level boxes seen
	sawMdat  bool // an mdat came before the moov
	moovSeen bool
	moovOK   bool // the moov was read to its end
	fragBad  bool // a moof could not be read: fragment sums are partial
	movie    movie
	cur      *track // the trak being read
	traf     traf   // the traf being read
}

type frame struct {
	typ        string
	start, end int64 // end -1: to the end of the stream
}

func newBMFF(r *Report) *bmff { return &bmff{r: r} }

func (m *bmff) write(p []byte) {
	for len(p) > 0 && !m.stopped {
		switch {
		case m.skip < 0:
			m.off += int64(len(p))
			return
		case m.skip > 0:
			n := min(m.skip, int64(len(p)))
			m.skip -= n
			m.off += n
			p = p[n:]
		case m.want > 0:
			n := min(m.want-len(m.buf), len(p))
			if len(m.buf)+n > cap(m.buf) {
				// Grow with the bytes that arrive, never past the declared
				// size: a header that lies costs no memory by itself.
				nb := make([]byte, len(m.buf), min(m.want, max(2*cap(m.buf), len(m.buf)+n, 4<<10)))
				copy(nb, m.buf)
				m.buf = nb
			}
			m.buf = append(m.buf, p[:n]...)
			m.off += int64(n)
			p = p[n:]
			if len(m.buf) == m.want {
				m.want = 0
				m.leaf(m.typ, m.buf)
				if cap(m.buf) > keepBytes {
					m.buf = nil
				}
			}
		default:
			if f := m.top(); m.nhdr == 0 && f != nil && f.end >= 0 && f.end-m.off < 8 {
				m.problem(fmt.Sprintf("%s: %d stray bytes after its last box", f.typ, f.end-m.off))
				m.skip = f.end - m.off
				continue
			}
			p = m.header(p)
		}
		if m.nhdr == 0 && m.skip == 0 && m.want == 0 {
			m.pop()
		}
	}
}

func (m *bmff) top() *frame {
	if len(m.stack) == 0 {
		return nil
	}
	return &m.stack[len(m.stack)-1]
}

func (m *bmff) parent() string {
	if f := m.top(); f != nil {
		return f.typ
	}
	return ""
}

// pop closes the containers that end here.
func (m *bmff) pop() {
	for f := m.top(); f != nil && f.end >= 0 && m.off >= f.end; f = m.top() {
		m.stack = m.stack[:len(m.stack)-1]
		m.close(f.typ)
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
	if m.nhdr < need || (need == 8 && binary.BigEndian.Uint32(m.hdr[:4]) == 1) {
		return p // more header to come (a 64-bit size follows)
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
	switch {
	case !printableType(m.hdr[4:8]):
		m.fail(fmt.Sprintf("bytes at offset %d are not a box header", m.boxStart))
		return nil
	case size != 0 && size < hlen:
		m.fail(fmt.Sprintf("box %q at offset %d declares %d bytes, less than its header", m.typ, m.boxStart, size))
		return nil
	}
	end := m.boxStart + size
	parent := m.top()
	switch {
	case size == 0 && parent != nil:
		end = parent.end
	case size == 0 && m.r.TotalBytes >= 0:
		end = m.r.TotalBytes
	case size == 0:
		end = -1
	}
	if parent != nil && parent.end >= 0 && (end < 0 || end > parent.end) {
		m.fail(fmt.Sprintf("box %q at offset %d declares %d bytes, past the end of its parent %q", m.typ, m.boxStart, size, parent.typ))
		return nil
	}
	m.boxSize = size
	if size == 0 {
		m.boxSize = -1
	}
	m.open(end)
	return p
}

// containers maps a parent to the children walked into.
var containers = map[string][]string{
	"": {"moov", "moof"}, "moov": {"trak", "mvex"}, "trak": {"mdia"}, "mdia": {"minf"},
	"minf": {"stbl"}, "moof": {"traf"},
}

// leaves maps a parent to the children read whole, with their caps.
var leaves = map[string]map[string]int{
	"":     {"ftyp": 4 << 10},
	"moov": {"mvhd": maxBoxBytes},
	"mvex": {"mehd": maxBoxBytes, "trex": maxBoxBytes},
	"trak": {"tkhd": maxBoxBytes},
	"mdia": {"mdhd": maxBoxBytes, "hdlr": maxBoxBytes},
	"stbl": {"stsd": maxBoxBytes, "stts": MaxTableBytes},
	"traf": {"tfhd": maxBoxBytes, "trun": MaxTableBytes},
}

// open decides what happens to the body of the box whose header was read.
func (m *bmff) open(end int64) {
	parent, typ := m.parent(), m.typ
	body := int64(-1)
	if end >= 0 {
		body = end - m.off
	}
	if parent == "" {
		m.boxes++
		if m.boxes == 1 && typ != "ftyp" {
			m.r.Format = FormatMOV // QuickTime files may start without ftyp
		}
		if typ == "mdat" && !m.moovSeen {
			m.sawMdat = true
		}
	}
	if len(m.stack) < maxDepth && m.walkInto(parent, typ) {
		m.stack = append(m.stack, frame{typ: typ, start: m.boxStart, end: end})
		return
	}
	if limit, ok := leaves[parent][typ]; ok {
		if body >= 0 && body <= int64(limit) {
			m.want = int(body)
			m.buf = m.buf[:0]
			if m.want == 0 {
				m.leaf(typ, nil)
			}
			return
		}
		m.r.Oversized = true
		if parent == "traf" {
			m.fragBad = true
		}
	}
	m.skip = body
}

// walkInto says whether to walk into a container, and starts it.
func (m *bmff) walkInto(parent, typ string) bool {
	found := false
	for _, c := range containers[parent] {
		found = found || c == typ
	}
	if !found {
		return false
	}
	switch typ {
	case "moov":
		if m.moovSeen {
			return false // a second moov is skipped
		}
		m.moovSeen = true
		m.r.MoovOffset = m.boxStart
		m.r.Faststart = !m.sawMdat
	case "trak":
		m.cur = &track{}
	case "mvex":
		m.movie.fragments = true
	case "moof":
		m.r.Fragmented = true
	case "traf":
		m.traf = traf{}
	}
	return true
}

// close ends a container.
func (m *bmff) close(typ string) {
	switch typ {
	case "trak":
		if m.cur != nil && len(m.movie.tracks) < maxTracks {
			m.movie.tracks = append(m.movie.tracks, m.cur)
		}
		m.cur = nil
	case "moov":
		m.moovOK = true
		m.publish()
	case "moof":
		if m.moovOK {
			m.publish()
		}
	}
}

// leaf reads a box body that was read whole.
func (m *bmff) leaf(typ string, b []byte) {
	var err string
	switch parent := m.parent(); {
	case parent == "" && typ == "ftyp":
		if len(b) >= 4 {
			m.r.Brand = string(b[:4])
			if m.r.Brand == "qt  " {
				m.r.Format = FormatMOV
			}
		}
	case parent == "moov" || parent == "mvex":
		err = m.movie.leaf(typ, b)
	case parent == "traf":
		if err = m.movie.fragment(&m.traf, typ, b); err != "" {
			m.fragBad = true
		}
	case m.cur != nil:
		err = m.cur.leaf(parent, typ, b)
	}
	if err != "" {
		m.problem(err)
	}
}

func (m *bmff) finish() {
	open := m.top()
	for _, f := range m.stack {
		if f.end >= 0 {
			open = &f
			break
		}
	}
	switch {
	case m.stopped:
	case m.nhdr > 0:
		m.problem(fmt.Sprintf("truncated: the stream ends inside a box header at offset %d", m.off-int64(m.nhdr)))
	case open != nil && open.end > m.off:
		m.problem(fmt.Sprintf("truncated: box %q at offset %d declares %d bytes, the stream ends after %d",
			open.typ, open.start, open.end-open.start, m.off-open.start))
	case m.want > 0 || m.skip > 0:
		m.problem(fmt.Sprintf("truncated: box %q at offset %d declares %d bytes, the stream ends after %d",
			m.typ, m.boxStart, m.boxSize, m.off-m.boxStart))
	}
	if !m.moovOK && !m.moovSeen {
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
	m.movie.report(m.r, m.r.Ended && !m.fragBad)
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
		if (c < 0x20 || c > 0x7e) && c != 0xa9 { // © starts QuickTime metadata atoms
			return false
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
