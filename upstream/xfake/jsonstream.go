package xfake

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"
)

// errBadJSON is a body that is not the JSON object expected.
var errBadJSON = errors.New("xfake: request body is not valid JSON")

// errNotObject is valid JSON that is not an object.
var errNotObject = errors.New("xfake: request body must be a JSON object")

// jsonObject is a top-level JSON object whose "media" string member (a
// base64 segment, possibly many megabytes) is streamed rather than held:
// onMedia receives a reader of the string's unescaped content and must
// consume it. Every other member is captured raw, up to maxField bytes.
type jsonObject struct {
	br      *bufio.Reader
	members map[string]json.RawMessage
}

func readJSONObject(r io.Reader, onMedia func(io.Reader) error) (map[string]json.RawMessage, error) {
	o := &jsonObject{br: bufio.NewReader(r), members: map[string]json.RawMessage{}}
	if err := o.read(onMedia); err != nil {
		return nil, err
	}
	return o.members, nil
}

func (o *jsonObject) read(onMedia func(io.Reader) error) error {
	c, err := o.next()
	if err == io.EOF {
		return errNotObject
	}
	if err != nil {
		return err
	}
	if c != '{' {
		_ = o.br.UnreadByte()
		if _, err := o.capture(); err == nil && o.atEOF() {
			return errNotObject
		}
		return errBadJSON
	}
	for first := true; ; first = false {
		c, err := o.next()
		if err != nil {
			return errBadJSON
		}
		if c == '}' && first {
			break
		}
		if c != '"' {
			return errBadJSON
		}
		key, err := o.smallString()
		if err != nil {
			return err
		}
		if c, err := o.next(); err != nil || c != ':' {
			return errBadJSON
		}
		if _, dup := o.members[key]; dup {
			return errBadJSON
		}
		c, err = o.next()
		if err != nil {
			return errBadJSON
		}
		if key == "media" && c == '"' {
			sr := &jsonString{br: o.br}
			if err := onMedia(sr); err != nil {
				return err
			}
			if !sr.done {
				return errBadJSON
			}
			o.members[key] = json.RawMessage(`""`)
		} else {
			_ = o.br.UnreadByte()
			raw, err := o.capture()
			if err != nil {
				return err
			}
			o.members[key] = raw
		}
		c, err = o.next()
		if err != nil {
			return errBadJSON
		}
		if c == '}' {
			break
		}
		if c != ',' {
			return errBadJSON
		}
	}
	if !o.atEOF() {
		return errBadJSON
	}
	return nil
}

// next returns the next byte that is not JSON whitespace.
func (o *jsonObject) next() (byte, error) {
	for {
		c, err := o.br.ReadByte()
		if err != nil {
			return 0, err
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, nil
		}
	}
}

func (o *jsonObject) atEOF() bool {
	_, err := o.next()
	return err == io.EOF
}

// smallString reads the rest of a string whose opening quote was consumed.
func (o *jsonObject) smallString() (string, error) {
	b, err := io.ReadAll(io.LimitReader(&jsonString{br: o.br}, maxField+1))
	if err != nil || len(b) > maxField {
		return "", errBadJSON
	}
	return string(b), nil
}

// capture reads one JSON value verbatim (at most maxField bytes) and checks
// it is valid.
func (o *jsonObject) capture() (json.RawMessage, error) {
	var buf []byte
	depth, inStr, esc := 0, false, false
	for len(buf) <= maxField {
		c, err := o.br.ReadByte()
		if err == io.EOF && depth == 0 && !inStr && len(buf) > 0 {
			break
		}
		if err != nil {
			return nil, errBadJSON
		}
		if !inStr && depth == 0 && len(buf) > 0 && buf[0] != '"' &&
			(c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			_ = o.br.UnreadByte()
			break
		}
		buf = append(buf, c)
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
			if !inStr && depth == 0 {
				return o.valid(buf)
			}
		case inStr:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return o.valid(buf)
			}
			if depth < 0 {
				return nil, errBadJSON
			}
		}
	}
	return o.valid(buf)
}

func (o *jsonObject) valid(b []byte) (json.RawMessage, error) {
	if len(b) == 0 || len(b) > maxField || !json.Valid(b) {
		return nil, errBadJSON
	}
	return b, nil
}

// jsonString reads the content of a JSON string whose opening quote was
// consumed, unescaping as it goes, and reports io.EOF at the closing quote.
type jsonString struct {
	br   *bufio.Reader
	done bool
	err  error
}

func (s *jsonString) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && !s.done && s.err == nil {
		c, err := s.br.ReadByte()
		switch {
		case err != nil:
			s.err = errBadJSON
		case c == '"':
			s.done = true
		case c < 0x20:
			s.err = errBadJSON
		case c == '\\':
			r := s.escape()
			if s.err != nil {
				break
			}
			if r < utf8.RuneSelf {
				p[n] = byte(r)
				n++
				continue
			}
			s.err = errBadJSON // non-ASCII escapes never occur in base64 or field names we use
		default:
			p[n] = c
			n++
		}
	}
	if n > 0 {
		return n, nil
	}
	if s.err != nil {
		return 0, s.err
	}
	return 0, io.EOF
}

func (s *jsonString) escape() rune {
	c, err := s.br.ReadByte()
	if err != nil {
		s.err = errBadJSON
		return 0
	}
	switch c {
	case '"', '\\', '/':
		return rune(c)
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'u':
		var v rune
		for range 4 {
			h, err := s.br.ReadByte()
			if err != nil {
				s.err = errBadJSON
				return 0
			}
			switch {
			case '0' <= h && h <= '9':
				v = v<<4 | rune(h-'0')
			case 'a' <= h && h <= 'f':
				v = v<<4 | rune(h-'a'+10)
			case 'A' <= h && h <= 'F':
				v = v<<4 | rune(h-'A'+10)
			default:
				s.err = errBadJSON
				return 0
			}
		}
		return v
	}
	s.err = errBadJSON
	return 0
}
