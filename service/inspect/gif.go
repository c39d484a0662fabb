package inspect

import "fmt"

// gifParser walks the blocks of a GIF (GIF89a specification §17-§27)
// without decoding pixels: it reads the logical screen descriptor, skips
// color tables and data sub-blocks by their sizes and counts image
// descriptors. It keeps at most 13 bytes.
type gifParser struct {
	r       *Report
	state   gifState
	need    int // bytes wanted in buf before step runs
	buf     [13]byte
	n       int
	skip    int64
	off     int64
	stopped bool
}

type gifState int

const (
	gifHeader gifState = iota
	gifBlock           // introducer byte of the next block
	gifLabel           // extension label
	gifDesc            // image descriptor (9 bytes)
	gifLZW             // LZW minimum code size
	gifSub             // sub-block size byte
	gifDone            // trailer seen
)

func newGIF(r *Report) *gifParser { return &gifParser{r: r, need: 13} }

func (g *gifParser) write(p []byte) {
	for len(p) > 0 && !g.stopped && g.state != gifDone {
		if g.skip > 0 {
			n := min(g.skip, int64(len(p)))
			g.skip -= n
			g.off += n
			p = p[n:]
			continue
		}
		k := copy(g.buf[g.n:g.need], p)
		g.n += k
		g.off += int64(k)
		p = p[k:]
		if g.n == g.need {
			g.n = 0
			g.step()
		}
	}
}

// step handles the g.need bytes in g.buf for the current state.
func (g *gifParser) step() {
	b := g.buf[:g.need]
	g.need = 1
	switch g.state {
	case gifHeader:
		g.r.Width = int(b[6]) | int(b[7])<<8
		g.r.Height = int(b[8]) | int(b[9])<<8
		g.r.Known |= KnownDimensions
		if b[10]&0x80 != 0 {
			g.skip = 3 << (b[10]&7 + 1)
		}
		g.state = gifBlock
	case gifBlock:
		switch b[0] {
		case 0x21:
			g.state = gifLabel
		case 0x2c:
			g.state, g.need = gifDesc, 9
		case 0x3b:
			g.state = gifDone
			g.r.Known |= KnownFrames
			g.r.Complete = true
			if g.r.Frames == 0 {
				g.problem("the GIF has no image")
			}
		default:
			g.problem(fmt.Sprintf("byte 0x%02x at offset %d starts no GIF block", b[0], g.off-1))
			g.stopped = true
		}
	case gifLabel:
		g.state = gifSub
	case gifDesc:
		g.r.Frames++
		if b[8]&0x80 != 0 {
			g.skip = 3 << (b[8]&7 + 1)
		}
		g.state = gifLZW
	case gifLZW:
		g.state = gifSub
	case gifSub:
		if b[0] == 0 {
			g.state = gifBlock
		} else {
			g.skip = int64(b[0])
		}
	}
}

func (g *gifParser) finish() {
	if g.state == gifDone || g.stopped {
		return
	}
	if g.state == gifHeader {
		g.problem("truncated: the GIF header is cut short")
		return
	}
	g.problem(fmt.Sprintf("truncated: the GIF ends after %d frames without its trailer", g.r.Frames))
}

func (g *gifParser) problem(s string) {
	if g.r.Problem == "" {
		g.r.Problem = s
	}
}
