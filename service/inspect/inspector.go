package inspect

import (
	"bytes"
	"fmt"
	"strings"
)

// sniffLen is how many leading bytes decide the format.
const sniffLen = 16

// parser consumes the bytes of one format, in order, and fills the report.
type parser interface {
	write(p []byte)
	finish()
}

// Inspector learns what an upload is from its bytes, fed in order. It is
// not safe for concurrent use; Write and Report are meant to be called by
// the goroutine that moves the bytes.
type Inspector struct {
	r      Report
	sniff  [sniffLen]byte
	nsniff int
	p      parser
	dead   bool // a parser panicked: nothing more is learnt
}

// New returns an inspector for an upload declared as mediaType (X's media
// type, e.g. "video/mp4") of totalBytes bytes (-1 when unknown). When
// totalBytes bytes have been written the stream counts as ended.
func New(mediaType string, totalBytes int64) *Inspector {
	if totalBytes < 0 {
		totalBytes = -1
	}
	i := &Inspector{r: Report{MediaType: strings.ToLower(strings.TrimSpace(mediaType)), TotalBytes: totalBytes, MoovOffset: -1}}
	if totalBytes == 0 {
		i.finish()
	}
	return i
}

// Write feeds the next bytes of the upload. It never fails and never keeps
// p: malformed media becomes [Report.Problem], not an error. It always
// returns len(p), nil, so it can sit in an [io.MultiWriter] or behind an
// [io.TeeReader].
func (i *Inspector) Write(p []byte) (int, error) {
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	if i.r.Ended {
		i.r.BytesSeen += int64(n)
		i.problem(fmt.Sprintf("more bytes than the declared %d", i.r.TotalBytes))
		return n, nil
	}
	if t := i.r.TotalBytes; t >= 0 && i.r.BytesSeen+int64(n) > t {
		extra := i.r.BytesSeen + int64(n) - t
		i.feed(p[:int64(n)-extra])
		i.r.BytesSeen += extra
		i.problem(fmt.Sprintf("more bytes than the declared %d", t))
		return n, nil
	}
	i.feed(p)
	return n, nil
}

// feed counts p, passes it on and ends the stream at TotalBytes.
func (i *Inspector) feed(p []byte) {
	i.r.BytesSeen += int64(len(p))
	i.guard(func() {
		if i.p == nil {
			k := copy(i.sniff[i.nsniff:], p)
			i.nsniff += k
			p = p[k:]
			if i.nsniff < sniffLen {
				return
			}
			i.start()
		}
		if len(p) > 0 {
			i.p.write(p)
		}
	})
	if t := i.r.TotalBytes; t >= 0 && i.r.BytesSeen >= t {
		i.finish()
	}
}

// Finish says the stream has ended (needed only when totalBytes was
// unknown; it happens by itself at totalBytes). Values that depend on the
// end (a fragmented movie's duration, a GIF's frame count, the last cue)
// become final, and truncation becomes a [Report.Problem]. Later calls do
// nothing. It returns the final report.
func (i *Inspector) Finish() Report {
	i.finish()
	return i.Report()
}

func (i *Inspector) finish() {
	if i.r.Ended {
		return
	}
	i.r.Ended = true
	i.guard(func() {
		if i.p == nil {
			i.start()
		}
		i.p.finish()
	})
}

// Report returns what is known so far. It is cheap and safe to call at any
// time between writes; the returned value does not change afterwards.
func (i *Inspector) Report() Report { return i.r }

func (i *Inspector) problem(s string) {
	if i.r.Problem == "" {
		i.r.Problem = s
	}
}

// guard runs f unless a parser has failed before; a panic (a parser bug)
// is turned into a Problem so the upload itself is never hurt.
func (i *Inspector) guard(f func()) {
	if i.dead {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			i.dead = true
			i.problem(fmt.Sprintf("internal: inspector stopped: %v", v))
		}
	}()
	f()
}

// start picks the parser from the sniffed bytes and replays them into it.
func (i *Inspector) start() {
	head := i.sniff[:i.nsniff]
	f := sniffFormat(head, i.r.MediaType)
	i.r.Format = f
	i.r.Known |= KnownFormat
	switch f {
	case FormatMP4, FormatMOV:
		i.p = newBMFF(&i.r)
	case FormatGIF:
		i.p = newGIF(&i.r)
	case FormatPNG, FormatJPEG, FormatWebP, FormatBMP, FormatTIFF:
		i.p = newImage(&i.r, f)
	case FormatSRT, FormatVTT:
		i.p = newSubtitles(&i.r, f)
	default:
		if f == FormatUnknown {
			i.problem("the first bytes match no known media format")
		}
		i.p = nopParser{}
	}
	if len(head) > 0 {
		i.p.write(head)
	}
}

type nopParser struct{}

func (nopParser) write([]byte) {}
func (nopParser) finish()      {}

var bmffTypes = []string{"ftyp", "moov", "mdat", "free", "skip", "wide", "pnot", "styp"}

// sniffFormat decides the format from the first bytes; the declared media
// type only breaks the tie for text, which has no magic number.
func sniffFormat(b []byte, mediaType string) Format {
	switch {
	case len(b) >= 8 && bmffBox(string(b[4:8])):
		return FormatMP4 // refined to MOV by the ftyp brand
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return FormatGIF
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return FormatPNG
	case bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}):
		return FormatJPEG
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return FormatWebP
	case bytes.HasPrefix(b, []byte("BM")):
		return FormatBMP
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return FormatTIFF
	case bytes.HasPrefix(b, []byte{0x1a, 0x45, 0xdf, 0xa3}):
		return FormatWebM
	case len(b) > 0 && b[0] == 0x47 && mediaType == "video/mp2t":
		return FormatMP2T
	}
	text := bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	switch {
	case bytes.HasPrefix(text, []byte("WEBVTT")):
		return FormatVTT
	case mediaType == "text/vtt":
		return FormatVTT // the parser reports the missing header
	case mediaType == "text/srt", mediaType == "application/x-subrip":
		return FormatSRT
	case len(text) > 0 && text[0] >= '0' && text[0] <= '9' && bytes.Contains(text, []byte("\n")):
		return FormatSRT
	}
	return FormatUnknown
}

func bmffBox(t string) bool {
	for _, s := range bmffTypes {
		if t == s {
			return true
		}
	}
	return false
}
