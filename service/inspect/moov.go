package inspect

import (
	"encoding/binary"
	"fmt"
	"time"
)

// maxTracks bounds the tracks kept from one moov.
const maxTracks = 64

// movie is what the moov (and the moofs after it) say.
type movie struct {
	timescale uint32
	duration  uint64            // mvhd, in timescale units
	fragDur   uint64            // mehd fragment_duration, in timescale units
	fragments bool              // mvex present (mehd or trex seen)
	trex      map[uint32]uint32 // track_ID -> default_sample_duration
	tracks    []*track
}

type track struct {
	id        uint32
	handler   string
	timescale uint32
	duration  uint64 // mdhd
	samples   uint64 // stts sample count
	sampleDur uint64 // stts sum of deltas
	fragN     uint64 // samples in moofs
	fragDur   uint64 // their durations
	video     bool
	audio     bool
	v         Video
	a         Audio
	gotEntry  bool // a sample entry was parsed
}

// eachBox iterates the boxes packed in b, calling f with each type and body.
// It returns a description of the first malformed box ("" if none).
func eachBox(b []byte, where string, f func(typ string, body []byte) string) string {
	for len(b) > 0 {
		if len(b) < 8 {
			return fmt.Sprintf("%s: %d stray bytes after the last box", where, len(b))
		}
		size := uint64(binary.BigEndian.Uint32(b))
		typ := string(b[4:8])
		hlen := uint64(8)
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return fmt.Sprintf("%s: box %q has a cut 64-bit size", where, printable(typ))
			}
			size, hlen = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size < hlen || size > uint64(len(b)) {
			return fmt.Sprintf("%s: box %q declares %d bytes, its parent has %d left", where, printable(typ), size, len(b))
		}
		if err := f(typ, b[hlen:size]); err != "" {
			return err
		}
		b = b[size:]
	}
	return ""
}

// leaf reads mvhd, and mvex's mehd and trex.
func (mv *movie) leaf(typ string, body []byte) string {
	r := reader{b: body}
	switch typ {
	case "mvhd":
		if r.u8() == 1 {
			r.skip(3 + 16)
			mv.timescale = r.u32()
			mv.duration = r.u64()
		} else {
			r.skip(3 + 8)
			mv.timescale = r.u32()
			mv.duration = uint64(r.u32())
		}
	case "mehd":
		mv.fragments = true
		if r.u8() == 1 {
			r.skip(3)
			mv.fragDur = r.u64()
		} else {
			r.skip(3)
			mv.fragDur = uint64(r.u32())
		}
	case "trex":
		mv.fragments = true
		r.skip(4)
		id := r.u32()
		r.skip(4)
		d := r.u32()
		if mv.trex == nil {
			mv.trex = map[uint32]uint32{}
		}
		if !r.bad && len(mv.trex) < maxTracks {
			mv.trex[id] = d
		}
	}
	if r.bad {
		return fmt.Sprintf("moov: %s is cut short", typ)
	}
	return ""
}

func (mv *movie) track(id uint32) *track {
	for _, t := range mv.tracks {
		if t.id == id {
			return t
		}
	}
	return nil
}

// leaf reads a trak's tkhd, mdhd, hdlr, stsd and stts.
func (t *track) leaf(parent, typ string, body []byte) string {
	r := reader{b: body}
	switch typ {
	case "tkhd":
		if r.u8() == 1 {
			r.skip(3 + 16)
		} else {
			r.skip(3 + 8)
		}
		t.id = r.u32()
	case "mdhd":
		if r.u8() == 1 {
			r.skip(3 + 16)
			t.timescale = r.u32()
			t.duration = r.u64()
		} else {
			r.skip(3 + 8)
			t.timescale = r.u32()
			t.duration = uint64(r.u32())
		}
	case "hdlr":
		r.skip(8)
		t.handler = string(r.bytes(4))
		t.video = t.handler == "vide"
		t.audio = t.handler == "soun"
	case "stsd":
		r.skip(4)
		if n := r.u32(); n == 0 || r.bad {
			break
		}
		return eachBox(r.rest(), "stsd", func(typ string, body []byte) string {
			if t.gotEntry {
				return ""
			}
			t.gotEntry = true
			return t.sampleEntry(typ, body)
		})
	case "stts":
		r.skip(4)
		n := r.u32()
		if uint64(n)*8 > uint64(len(r.rest())) {
			return fmt.Sprintf("stts: %d entries do not fit in %d bytes", n, len(r.rest()))
		}
		for i := uint32(0); i < n; i++ {
			c, d := uint64(r.u32()), uint64(r.u32())
			t.samples += c
			t.sampleDur += c * d
		}
	}
	if r.bad {
		return fmt.Sprintf("%s: %s is cut short", parent, typ)
	}
	return ""
}

// traf is the state of the track fragment being read.
type traf struct {
	t   *track
	def uint32 // default sample duration
}

// fragment adds a traf's tfhd and trun: the sample counts and durations of
// one movie fragment (ISO/IEC 14496-12 §8.8).
func (mv *movie) fragment(f *traf, typ string, body []byte) string {
	r := reader{b: body}
	switch typ {
	case "tfhd":
		flags := r.u32() & 0xffffff
		id := r.u32()
		f.t = mv.track(id)
		f.def = mv.trex[id]
		if flags&0x01 != 0 {
			r.skip(8)
		}
		if flags&0x02 != 0 {
			r.skip(4)
		}
		if flags&0x08 != 0 {
			f.def = r.u32()
		}
	case "trun":
		if f.t == nil {
			return ""
		}
		flags := r.u32() & 0xffffff
		n := r.u32()
		if flags&0x01 != 0 {
			r.skip(4)
		}
		if flags&0x04 != 0 {
			r.skip(4)
		}
		per := 0
		for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
			if flags&bit != 0 {
				per += 4
			}
		}
		if r.bad || uint64(n)*uint64(per) > uint64(len(r.rest())) {
			return fmt.Sprintf("trun: %d samples do not fit in %d bytes", n, len(r.rest()))
		}
		f.t.fragN += uint64(n)
		if flags&0x100 == 0 {
			f.t.fragDur += uint64(n) * uint64(f.def)
			return ""
		}
		for i := uint32(0); i < n; i++ {
			f.t.fragDur += uint64(r.u32())
			r.skip(per - 4)
		}
	}
	if r.bad {
		return fmt.Sprintf("traf: %s is cut short", typ)
	}
	return ""
}

// report copies the movie into r; end says every fragment has been seen.
func (mv *movie) report(r *Report, end bool) {
	r.Known |= KnownTracks | KnownLayout
	r.Fragmented = r.Fragmented || mv.fragments
	final := !r.Fragmented || end
	r.VideoTracks, r.AudioTracks = 0, 0
	var longest time.Duration
	var gotV, gotA bool
	for _, t := range mv.tracks {
		d := ticks(t.duration+t.fragDur, t.timescale)
		longest = max(longest, d)
		switch {
		case t.video:
			r.VideoTracks++
			if gotV {
				continue
			}
			gotV = true
			r.Video = t.v
			r.Video.Duration = d
			n, dur := t.samples+t.fragN, t.sampleDur+t.fragDur
			r.Video.Frames = int64(n)
			if dur > 0 && n > 0 && t.timescale > 0 {
				num, den := reduce(n*uint64(t.timescale), dur)
				r.Video.FrameRateNum, r.Video.FrameRateDen = int64(num), int64(den)
			}
			if t.gotEntry {
				r.Known |= KnownVideoCodec | KnownDimensions | KnownPixelAspect
				r.Width, r.Height = t.v.Width, t.v.Height
			}
			if final && r.Video.FrameRateDen > 0 {
				r.Known |= KnownFrameRate
			}
		case t.audio:
			r.AudioTracks++
			if gotA {
				continue
			}
			gotA = true
			r.Audio = t.a
			if t.gotEntry {
				r.Known |= KnownAudio
			}
		}
	}
	switch {
	case mv.duration > 0 && !r.Fragmented:
		r.Duration = ticks(mv.duration, mv.timescale)
		r.Known |= KnownDuration
	case mv.fragDur > 0:
		r.Duration = ticks(mv.fragDur, mv.timescale)
		r.Known |= KnownDuration
	default:
		r.Duration = longest
		if final {
			r.Known |= KnownDuration
		}
	}
}

func ticks(n uint64, scale uint32) time.Duration {
	if scale == 0 {
		return 0
	}
	s, f := n/uint64(scale), n%uint64(scale)
	if s > uint64(1<<63-1)/uint64(time.Second) {
		return time.Duration(1<<63 - 1)
	}
	return time.Duration(s)*time.Second + time.Duration(f*uint64(time.Second)/uint64(scale))
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func reduce(a, b uint64) (uint64, uint64) {
	g := gcd(a, b)
	if g == 0 {
		return a, b
	}
	a, b = a/g, b/g
	for a > 1<<62 || b > 1<<62 {
		a, b = a>>1, b>>1
	}
	return a, b
}

// reader reads big-endian fields from a box body; reading past the end
// sets bad and yields zeros, so a cut box can never be read beyond.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.bad = true
		r.b = nil
		if n < 0 || n > 8 {
			return nil
		}
		return make([]byte, n) // zeros for the fixed-size reads

	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) skip(n int)   { r.bytes(n) }
func (r *reader) rest() []byte { return r.b }
func (r *reader) u8() uint8    { return r.bytes(1)[0] }
func (r *reader) u16() uint16  { return binary.BigEndian.Uint16(r.bytes(2)) }
func (r *reader) u32() uint32  { return binary.BigEndian.Uint32(r.bytes(4)) }
func (r *reader) u64() uint64  { return binary.BigEndian.Uint64(r.bytes(8)) }
