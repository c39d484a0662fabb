package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// MaxImageHeaderBytes is how much of an image is kept to read its
// dimensions. A JPEG whose frame header comes later (a large EXIF block)
// or a TIFF whose first IFD lies beyond it leaves the dimensions unknown.
const MaxImageHeaderBytes = 256 << 10

// imageParser keeps the first bytes of a still image and asks the decoder
// for its configuration (never the pixels) when the prefix doubles, so the
// work stays linear in the prefix.
type imageParser struct {
	r      *Report
	f      Format
	buf    []byte
	next   int // try again when len(buf) reaches next
	done   bool
	config func(io.Reader) (image.Config, error)
}

func newImage(r *Report, f Format) *imageParser {
	cfg := map[Format]func(io.Reader) (image.Config, error){
		FormatPNG: png.DecodeConfig, FormatJPEG: jpeg.DecodeConfig, FormatWebP: webp.DecodeConfig,
		FormatBMP: bmp.DecodeConfig, FormatTIFF: tiff.DecodeConfig,
	}[f]
	return &imageParser{r: r, f: f, next: 64, config: cfg}
}

func (m *imageParser) write(p []byte) {
	if m.done {
		return
	}
	room := MaxImageHeaderBytes - len(m.buf)
	m.buf = append(m.buf, p[:min(room, len(p))]...)
	if len(m.buf) >= m.next || len(m.buf) == MaxImageHeaderBytes {
		m.next = 2 * len(m.buf)
		m.try(len(m.buf) == MaxImageHeaderBytes)
	}
}

func (m *imageParser) finish() {
	if !m.done {
		m.try(true)
	}
}

// try decodes the header from the prefix; last says no more bytes will be
// added to it.
func (m *imageParser) try(last bool) {
	c, err := m.config(bytes.NewReader(m.buf))
	if err == nil {
		m.r.Width, m.r.Height = c.Width, c.Height
		m.r.Known |= KnownDimensions
		m.r.Complete = true
		m.done = true
		m.buf = nil
		return
	}
	short := errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
	switch {
	case last && len(m.buf) == MaxImageHeaderBytes && short:
		m.done = true // the header lies beyond the cap: unknown, not wrong
		m.buf = nil
	case last && !m.r.Ended && len(m.buf) == MaxImageHeaderBytes:
		m.fail(fmt.Errorf("the %s header is invalid: %v", m.f, err))
	case last && m.r.Ended && short:
		m.fail(fmt.Errorf("truncated: the %s header is cut short", m.f))
	case last && m.r.Ended:
		m.fail(fmt.Errorf("the %s header is invalid: %v", m.f, err))
	}
}

func (m *imageParser) fail(err error) {
	m.done = true
	m.buf = nil
	if m.r.Problem == "" {
		m.r.Problem = err.Error()
	}
}
