package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// flexID is a media id sent either as a JSON string or as a JSON number.
// Numbers are kept as their literal text: X's ids exceed 2^53 and must never
// pass through float64.
type flexID string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexID(strings.TrimSpace(s))
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = flexID(n.String())
	default:
		*f = ""
	}
	return nil
}

// flexString is a string field that tolerates other JSON types: numbers and
// booleans keep their literal text, objects and arrays decode as "".
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*f = ""
	switch {
	case len(b) == 0 || string(b) == "null" || b[0] == '{' || b[0] == '[':
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	default:
		*f = flexString(b)
	}
	return nil
}

// flexInt is an integer sent as a JSON number or as a numeric string. Values
// that are not integers (or absent) decode as 0 rather than failing the
// whole response: a count that cannot be read is less harmful than losing
// the media id next to it.
type flexInt int64

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
	}
	*f = 0
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*f = flexInt(n)
	}
	return nil
}

// wireMedia is every media field any dialect may send, at the top level
// (v1.1) or inside "data" (v2).
type wireMedia struct {
	ID             flexID          `json:"id"`
	MediaID        flexID          `json:"media_id"`
	MediaIDString  flexID          `json:"media_id_string"`
	MediaKey       flexString      `json:"media_key"`
	Size           flexInt         `json:"size"`
	ExpiresAfter   flexInt         `json:"expires_after_secs"`
	ExpiresAt      flexInt         `json:"expires_at"`
	ProcessingInfo *wireProcessing `json:"processing_info"`
}

type wireProcessing struct {
	State          flexString      `json:"state"`
	CheckAfterSecs flexInt         `json:"check_after_secs"`
	Progress       flexInt         `json:"progress_percent"`
	Error          json.RawMessage `json:"error"`
}

type wireProcErr struct {
	Code    flexInt    `json:"code"`
	Name    flexString `json:"name"`
	Message flexString `json:"message"`
}

// wireEnvelope is a whole response body: media fields at the top level, a
// "data" wrapper, and every known error field.
type wireEnvelope struct {
	wireMedia
	Data    json.RawMessage `json:"data"`
	Errors  json.RawMessage `json:"errors"`
	Error   json.RawMessage `json:"error"`
	Title   flexString      `json:"title"`
	Detail  flexString      `json:"detail"`
	Type    flexString      `json:"type"`
	Status  flexInt         `json:"status"`
	Request flexString      `json:"request"`
}

// wireErrItem is one element of "errors": an object, or a bare string.
type wireErrItem struct {
	Code    flexInt    `json:"code"`
	Message flexString `json:"message"`
	Title   flexString `json:"title"`
	Detail  flexString `json:"detail"`
}

// msThreshold separates expires_at in milliseconds from seconds: 1e11 seconds
// is the year 5138, 1e11 milliseconds is 1973.
const msThreshold = 100_000_000_000

// parseMedia decodes a 2xx body into a Media. An empty body yields an empty
// Media. now anchors the relative expiry.
func parseMedia(body []byte, now time.Time) (*Media, error) {
	m := &Media{}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return m, nil
	}
	var env wireEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, errors.New("it is not JSON: " + snippet(body))
	}
	w := env.wireMedia
	if d := bytes.TrimSpace(env.Data); len(d) > 0 && d[0] == '{' {
		var inner wireMedia
		if err := json.Unmarshal(d, &inner); err != nil {
			return nil, errors.New("its data is malformed: " + snippet(d))
		}
		w = mergeMedia(inner, w)
	}
	m.ID = string(firstNonEmpty(w.MediaIDString, w.ID, w.MediaID))
	m.Key = string(w.MediaKey)
	m.Size = int64(w.Size)
	m.ExpiresAfterSecs = int64(w.ExpiresAfter)
	switch at := int64(w.ExpiresAt); {
	case at >= msThreshold:
		m.ExpiresAt = time.UnixMilli(at)
	case at > 0:
		m.ExpiresAt = time.Unix(at, 0)
	case m.ExpiresAfterSecs > 0:
		m.ExpiresAt = now.Add(time.Duration(m.ExpiresAfterSecs) * time.Second)
	}
	if p := w.ProcessingInfo; p != nil {
		m.Processing = &Processing{
			State:           string(p.State),
			CheckAfterSecs:  int(clampInt(int64(p.CheckAfterSecs), 0, 1<<20)),
			ProgressPercent: int(clampInt(int64(p.Progress), 0, 100)),
		}
		m.Processing.Error = decodeProcErr(p.Error)
	}
	return m, nil
}

// decodeProcErr reads processing_info.error as an object or a bare string.
func decodeProcErr(raw json.RawMessage) *ProcessingError {
	raw = bytes.TrimSpace(raw)
	var e wireProcErr
	switch {
	case len(raw) == 0:
		return nil
	case raw[0] == '{':
		if json.Unmarshal(raw, &e) != nil {
			return nil
		}
	case raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil
		}
		e.Message = flexString(s)
	default:
		return nil
	}
	if e.Code == 0 && e.Name == "" && e.Message == "" {
		return nil
	}
	return &ProcessingError{Code: int(e.Code), Name: clean(string(e.Name)), Message: clean(string(e.Message))}
}

// mergeMedia fills empty fields of a from b.
func mergeMedia(a, b wireMedia) wireMedia {
	a.ID = firstNonEmpty(a.ID, b.ID)
	a.MediaID = firstNonEmpty(a.MediaID, b.MediaID)
	a.MediaIDString = firstNonEmpty(a.MediaIDString, b.MediaIDString)
	if a.MediaKey == "" {
		a.MediaKey = b.MediaKey
	}
	if a.Size == 0 {
		a.Size = b.Size
	}
	if a.ExpiresAfter == 0 {
		a.ExpiresAfter = b.ExpiresAfter
	}
	if a.ExpiresAt == 0 {
		a.ExpiresAt = b.ExpiresAt
	}
	if a.ProcessingInfo == nil {
		a.ProcessingInfo = b.ProcessingInfo
	}
	return a
}

func firstNonEmpty(ids ...flexID) flexID {
	for _, id := range ids {
		if id != "" {
			return id
		}
	}
	return ""
}

// parseAPIError builds an APIError from any error body shape. It never fails:
// unparseable bodies become a sanitized snippet.
func parseAPIError(status int, h http.Header, body []byte, now time.Time) *APIError {
	e := &APIError{HTTPStatus: status}
	e.RetryAfter, e.Reset = retryHints(h, now)
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return e
	}
	var env wireEnvelope
	if err := json.Unmarshal(body, &env); err != nil || (body[0] != '{') {
		e.Detail = "non-JSON body: " + snippet(body)
		return e
	}
	e.Title, e.Type = clean(string(env.Title)), clean(string(env.Type))
	var msgs []string
	for _, it := range decodeErrItems(env.Errors) {
		if e.Code == 0 && it.Code != 0 {
			e.Code = int(it.Code)
		}
		for _, s := range []string{string(it.Message), string(it.Detail), string(it.Title)} {
			if s = clean(s); s != "" {
				msgs = append(msgs, s)
				break
			}
		}
	}
	if s := decodeErrorField(env.Error); s != "" {
		msgs = append(msgs, s)
	}
	// The most specific text wins: an errors[] message ("BadRequest: Not
	// found") says more than the generic Problem detail next to it.
	switch {
	case len(msgs) > 0:
		e.Detail = strings.Join(msgs, "; ")
	default:
		e.Detail = clean(string(env.Detail))
	}
	if e.Detail == e.Title {
		e.Title = ""
	}
	return e
}

// decodeErrItems accepts errors as an array of objects or strings, a single
// object, or a single string.
func decodeErrItems(raw json.RawMessage) []wireErrItem {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var list []json.RawMessage
	if raw[0] != '[' {
		list = []json.RawMessage{raw}
	} else if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	out := make([]wireErrItem, 0, len(list))
	for _, r := range list {
		r = bytes.TrimSpace(r)
		var it wireErrItem
		switch {
		case len(r) > 0 && r[0] == '"':
			var s string
			if json.Unmarshal(r, &s) == nil {
				it.Message = flexString(s)
			}
		case len(r) > 0 && r[0] == '{':
			_ = json.Unmarshal(r, &it)
		default:
			continue
		}
		out = append(out, it)
	}
	return out
}

// decodeErrorField reads "error" as a string or an object with a message.
func decodeErrorField(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return clean(s)
	}
	var it wireErrItem
	if json.Unmarshal(raw, &it) == nil {
		return clean(firstString(string(it.Message), string(it.Detail), string(it.Title)))
	}
	return ""
}

func firstString(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// retryHints reads Retry-After (seconds or HTTP date) and x-rate-limit-reset.
func retryHints(h http.Header, now time.Time) (time.Duration, time.Time) {
	var after time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			after = time.Duration(clampInt(n, 0, 86400)) * time.Second
		} else if t, err := http.ParseTime(v); err == nil && t.After(now) {
			after = t.Sub(now)
		}
	}
	reset := parseReset(h.Get("x-rate-limit-reset"))
	if after == 0 && !reset.IsZero() && reset.After(now) {
		after = reset.Sub(now)
	}
	return after, reset
}

// parseReset reads an epoch timestamp in seconds (or milliseconds).
func parseReset(v string) time.Time {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	switch {
	case err != nil || n <= 0:
		return time.Time{}
	case n >= msThreshold:
		return time.UnixMilli(n)
	default:
		return time.Unix(n, 0)
	}
}

const maxSnippet = maxEcho

// snippet returns a short, printable excerpt of a body for error messages:
// HTML tags are dropped, whitespace collapsed, control and non-ASCII bytes
// replaced, and the result truncated.
func snippet(b []byte) string {
	if len(b) > 4096 {
		b = b[:4096]
	}
	var out strings.Builder
	inTag, space := false, false
	for len(b) > 0 && out.Len() < maxSnippet {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		switch {
		case r == '<':
			inTag = true
			continue
		case r == '>' && inTag:
			inTag = false
			r = ' '
		case inTag:
			continue
		}
		if unicode.IsSpace(r) {
			if !space && out.Len() > 0 {
				out.WriteByte(' ')
			}
			space = true
			continue
		}
		if r < 0x20 || r == 0x7f {
			continue // control bytes are dropped
		}
		space = false
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			r = '?'
		}
		out.WriteRune(r)
	}
	s := strings.TrimSpace(out.String())
	if len(b) > 0 {
		s += "…"
	}
	return s
}

// clean makes a message from X safe to embed in an error string.
func clean(s string) string {
	if s == "" {
		return ""
	}
	return snippet([]byte(s))
}

func clampInt(v, lo, hi int64) int64 {
	return max(lo, min(v, hi))
}
