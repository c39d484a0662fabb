package inspect

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxSubtitleLineBytes bounds the one line a subtitle parser keeps. A
// longer line is a finding (SUBTITLES_MALFORMED), not buffered.
const MaxSubtitleLineBytes = 16 << 10

// subParser checks SRT or WebVTT line by line: UTF-8, cue syntax and
// timings, counting cues. It keeps one line.
type subParser struct {
	r     *Report
	vtt   bool
	line  []byte
	long  bool // the current line overflowed
	n     int  // lines seen
	state subState
	cueAt int // line of the current cue's start
}

type subState int

const (
	subStart  subState = iota // before the first line
	subHeader                 // WebVTT header lines
	subBlock                  // between blocks (expect a number/identifier/timing)
	subTiming                 // the next line must be a timing line
	subText                   // cue payload
	subSkip                   // a NOTE/STYLE/REGION block, or after an error
)

func newSubtitles(r *Report, f Format) *subParser {
	return &subParser{r: r, vtt: f == FormatVTT}
}

func (s *subParser) write(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		if len(s.line)+len(seg) > MaxSubtitleLineBytes {
			s.long = true
		} else if !s.long {
			s.line = append(s.line, seg...)
		}
		if i < 0 {
			return
		}
		p = p[i+1:]
		s.endLine()
	}
}

func (s *subParser) finish() {
	if len(s.line) > 0 || s.long {
		s.endLine()
	}
	switch {
	case s.n == 0:
		s.malformed(1, "the file is empty")
	case s.state == subTiming:
		s.malformed(s.cueAt, "the last cue has no timing line")
	case s.r.Subtitles.Cues == 0:
		s.malformed(s.n, "the file has no cue")
	}
	s.r.Known |= KnownCues
	s.r.Complete = true
}

func (s *subParser) endLine() {
	s.n++
	line := bytes.TrimSuffix(s.line, []byte("\r"))
	long := s.long
	s.line, s.long = s.line[:0], false
	if s.n == 1 {
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
	}
	if long {
		s.malformed(s.n, fmt.Sprintf("the line is longer than %d bytes", MaxSubtitleLineBytes))
		s.state = subSkip
		return
	}
	if !utf8.Valid(line) && s.r.Subtitles.BadUTF8Line == 0 {
		s.r.Subtitles.BadUTF8Line = s.n
		s.problem(fmt.Sprintf("line %d is not UTF-8", s.n))
	}
	if s.vtt {
		s.vttLine(string(line))
	} else {
		s.srtLine(string(line))
	}
}

func (s *subParser) srtLine(l string) {
	blank := strings.TrimSpace(l) == ""
	switch s.state {
	case subStart, subBlock:
		if blank {
			s.state = subBlock
			return
		}
		if _, err := strconv.ParseUint(strings.TrimSpace(l), 10, 63); err != nil {
			s.malformed(s.n, "expected a cue number")
			s.state = subSkip
			return
		}
		s.state, s.cueAt = subTiming, s.n
	case subTiming:
		if why := timing(l, false); why != "" {
			s.malformed(s.n, why)
			s.state = subSkip
			return
		}
		s.r.Subtitles.Cues++
		s.state = subText
	case subText, subSkip:
		if blank {
			s.state = subBlock
		}
	}
}

func (s *subParser) vttLine(l string) {
	blank := strings.TrimSpace(l) == ""
	switch s.state {
	case subStart:
		if !strings.HasPrefix(l, "WEBVTT") || (len(l) > 6 && l[6] != ' ' && l[6] != '\t') {
			s.malformed(s.n, `the file does not start with "WEBVTT"`)
		}
		s.state = subHeader
	case subHeader:
		if blank {
			s.state = subBlock
		}
	case subBlock:
		switch {
		case blank:
		case keyword(l, "NOTE"), keyword(l, "STYLE"), keyword(l, "REGION"):
			s.state = subSkip
		case strings.Contains(l, "-->"):
			s.cueAt = s.n
			s.vttTiming(l)
		default:
			s.state, s.cueAt = subTiming, s.n // a cue identifier
		}
	case subTiming:
		s.vttTiming(l)
	case subText:
		switch {
		case blank:
			s.state = subBlock
		case strings.Contains(l, "-->"):
			s.malformed(s.n, `a cue's text contains "-->" (a missing blank line?)`)
			s.state = subSkip
		}
	case subSkip:
		if blank {
			s.state = subBlock
		}
	}
}

func (s *subParser) vttTiming(l string) {
	if why := timing(l, true); why != "" {
		s.malformed(s.n, why)
		s.state = subSkip
		return
	}
	s.r.Subtitles.Cues++
	s.state = subText
}

func keyword(l, k string) bool {
	return l == k || strings.HasPrefix(l, k+" ") || strings.HasPrefix(l, k+"\t")
}

func (s *subParser) malformed(line int, why string) {
	if s.r.Subtitles.MalformedLine == 0 {
		s.r.Subtitles.MalformedLine, s.r.Subtitles.MalformedReason = line, why
		s.problem(fmt.Sprintf("line %d: %s", line, why))
	}
}

func (s *subParser) problem(p string) {
	if s.r.Problem == "" {
		s.r.Problem = p
	}
}

// timing checks "start --> end[ settings]" and returns why it is wrong.
func timing(l string, vtt bool) string {
	a, b, ok := strings.Cut(l, "-->")
	if !ok {
		return `expected a timing line "start --> end"`
	}
	start, ok1 := timestamp(strings.TrimSpace(a), vtt)
	f := strings.Fields(b)
	if len(f) == 0 {
		return "the timing line has no end time"
	}
	end, ok2 := timestamp(f[0], vtt)
	switch {
	case !ok1 || !ok2:
		if vtt {
			return "a timestamp is not [hh:]mm:ss.ttt"
		}
		return "a timestamp is not hh:mm:ss,mmm"
	case end < start:
		return "the cue ends before it starts"
	}
	return ""
}

// timestamp parses hh:mm:ss,mmm (SRT; '.' accepted) or [hh:]mm:ss.ttt
// (WebVTT) into milliseconds.
func timestamp(t string, vtt bool) (int64, bool) {
	sep := ","
	if vtt || !strings.Contains(t, ",") {
		sep = "."
	}
	hms, ms, ok := strings.Cut(t, sep)
	if !ok || len(ms) != 3 || !digits(ms) {
		return 0, false
	}
	parts := strings.Split(hms, ":")
	if len(parts) == 2 && !vtt || len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	var v int64
	for i, p := range parts {
		if !digits(p) || len(p) > 9 || (i > 0 || len(parts) == 2) && len(p) != 2 {
			return 0, false
		}
		n, _ := strconv.ParseInt(p, 10, 64)
		if i > 0 && n > 59 {
			return 0, false
		}
		v = v*60 + n
	}
	m, _ := strconv.ParseInt(ms, 10, 64)
	return v*1000 + m, true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
