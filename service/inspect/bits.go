package inspect

import "math"

// bitReader reads MSB-first bit fields and Exp-Golomb codes (ITU-T H.264
// §9.1); reading past the end sets bad and yields zeros.
type bitReader struct {
	b   []byte
	pos int // in bits
	bad bool
}

func (r *bitReader) bits(n int) uint64 {
	var v uint64
	for ; n > 0; n-- {
		if r.pos >= len(r.b)*8 {
			r.bad = true
			return 0
		}
		bit := r.b[r.pos/8] >> (7 - r.pos%8) & 1
		v = v<<1 | uint64(bit)
		r.pos++
	}
	return v
}

// ue reads an unsigned Exp-Golomb code.
func (r *bitReader) ue() uint64 {
	zeros := 0
	for r.bits(1) == 0 {
		if r.bad || zeros >= 32 {
			r.bad = true
			return 0
		}
		zeros++
	}
	return (1<<zeros - 1) + r.bits(zeros)
}

// unescape removes emulation prevention bytes (00 00 03 -> 00 00) from a
// NAL unit payload (ITU-T H.264 §7.4.1).
func unescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

func float64frombits(u uint64) float64 { return math.Float64frombits(u) }
