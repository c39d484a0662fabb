package upstream

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Dialect selects which of X's three upload APIs the client speaks.
type Dialect string

// The dialects. See the package documentation for their wire formats.
const (
	// DialectV2 uses the dedicated v2 endpoints: POST
	// /2/media/upload/initialize (JSON), /2/media/upload/{id}/append
	// (multipart), /2/media/upload/{id}/finalize, and GET /2/media/upload
	// for STATUS. This is X's current API and the default.
	DialectV2 Dialect = "v2"
	// DialectV2Command uses the deprecated v2 command style: POST
	// /2/media/upload with command=INIT|APPEND|FINALIZE form fields.
	DialectV2Command Dialect = "v2-command"
	// DialectV1 uses v1.1 /1.1/media/upload.json (OAuth 1.0a only).
	DialectV1 Dialect = "v1.1"
)

// command is one of X's upload commands.
type command int

const (
	cmdInit command = iota
	cmdAppend
	cmdFinalize
	cmdStatus
	// The calls after an upload (metadata.go).
	cmdMetadata
	cmdSubtitlesCreate
	cmdSubtitlesDelete
	cmdLookup
)

// String returns X's name of the command, or for the calls after an
// upload a name in the same style; it names the call in errors and spans
// ("X METADATA").
func (c command) String() string {
	return [...]string{"INIT", "APPEND", "FINALIZE", "STATUS",
		"METADATA", "SUBTITLES CREATE", "SUBTITLES DELETE", "LOOKUP"}[c]
}

// rateName is the command's part of a rate-limit key: "init", "metadata",
// "subtitles" (create and delete share X's subtitles budget), "lookup".
func (c command) rateName() string {
	switch c {
	case cmdSubtitlesCreate, cmdSubtitlesDelete:
		return "subtitles"
	}
	return strings.ToLower(c.String())
}

// request is a dialect's description of one HTTP call, independent of
// credentials and attempts. body is the request body as parts sent in
// order (for APPEND a multipart head, the caller's segment buffer and a
// tail); they are never modified, so every attempt (and every redirect)
// sends them afresh.
type request struct {
	cmd         command
	method      string
	path        string
	query       url.Values
	contentType string
	body        [][]byte
	size        int64 // Content-Length of body
	segment     int   // APPEND segment index, -1 otherwise
	// mediaID and segBytes describe the call for telemetry; set by the
	// caller of the dialect (empty and 0 for INIT).
	mediaID  string
	segBytes int64
}

// dialect builds the request for each command and parses its answer. The
// three implementations differ only in paths and encodings; parsing is
// shared because X's answers are a small set of shapes across all three.
type dialect interface {
	initReq(p InitParams) (*request, error)
	appendReq(mediaID string, index int, seg []byte, boundary string) *request
	finalizeReq(mediaID string) *request
	statusReq(mediaID string) *request
	// rateKey names the rate-limit bucket of a command, e.g. "append".
	rateKey(c command) string
	// parse decodes a 2xx answer.
	parse(c command, status int, body []byte) (*Media, error)
}

func newDialect(d Dialect) (dialect, error) {
	switch d {
	case "", DialectV2:
		return v2Dialect{}, nil
	case DialectV2Command:
		return formDialect{path: "/2/media/upload", prefix: ""}, nil
	case DialectV1:
		return formDialect{path: "/1.1/media/upload.json", prefix: "v1.1-"}, nil
	}
	return nil, invalidf("unknown dialect %q", truncate(string(d), 32))
}

// multipartBody frames fields and the segment without copying the
// segment: the body is header bytes, the caller's segment slice, and a
// trailer, sent in place (see body). The segment must not change until
// the request is done.
func multipartBody(boundary string, fields [][2]string, seg []byte) ([][]byte, int64, string) {
	var head bytes.Buffer
	for _, f := range fields {
		head.WriteString("--" + boundary + "\r\n")
		head.WriteString(`Content-Disposition: form-data; name="` + f[0] + "\"\r\n\r\n")
		head.WriteString(f[1] + "\r\n")
	}
	head.WriteString("--" + boundary + "\r\n")
	head.WriteString(`Content-Disposition: form-data; name="media"; filename="blob"` + "\r\n")
	head.WriteString("Content-Type: application/octet-stream\r\n\r\n")
	tail := []byte("\r\n--" + boundary + "--\r\n")
	h := head.Bytes()
	size := int64(len(h) + len(seg) + len(tail))
	return [][]byte{h, seg, tail}, size, "multipart/form-data; boundary=" + boundary
}

// newBoundary returns a random multipart boundary. 30 random hex characters
// make a collision with media bytes practically impossible.
func newBoundary() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "mediagw" + hex.EncodeToString(b[:])
}

func formBody(v url.Values) ([][]byte, int64, string) {
	s := v.Encode()
	return [][]byte{[]byte(s)}, int64(len(s)), "application/x-www-form-urlencoded"
}

func bytesBody(b []byte, ct string) ([][]byte, int64, string) {
	return [][]byte{b}, int64(len(b)), ct
}

// v2Dialect speaks the dedicated v2 endpoints.
type v2Dialect struct{}

type v2InitBody struct {
	MediaType        string   `json:"media_type"`
	TotalBytes       int64    `json:"total_bytes"`
	MediaCategory    string   `json:"media_category,omitempty"`
	AdditionalOwners []string `json:"additional_owners,omitempty"`
	Shared           bool     `json:"shared,omitempty"`
}

func (v2Dialect) initReq(p InitParams) (*request, error) {
	b, err := json.Marshal(v2InitBody{
		MediaType: p.MediaType, TotalBytes: p.TotalBytes, MediaCategory: p.MediaCategory,
		AdditionalOwners: p.AdditionalOwners, Shared: p.Shared,
	})
	if err != nil {
		return nil, invalidf("encoding INIT: %v", err)
	}
	r := &request{cmd: cmdInit, method: http.MethodPost, path: "/2/media/upload/initialize", segment: -1}
	r.body, r.size, r.contentType = bytesBody(b, "application/json")
	return r, nil
}

func (v2Dialect) appendReq(id string, index int, seg []byte, boundary string) *request {
	r := &request{cmd: cmdAppend, method: http.MethodPost, segment: index,
		path: "/2/media/upload/" + url.PathEscape(id) + "/append"}
	r.body, r.size, r.contentType = multipartBody(boundary, [][2]string{{"segment_index", strconv.Itoa(index)}}, seg)
	return r
}

func (v2Dialect) finalizeReq(id string) *request {
	return &request{cmd: cmdFinalize, method: http.MethodPost, segment: -1,
		path: "/2/media/upload/" + url.PathEscape(id) + "/finalize"}
}

func (v2Dialect) statusReq(id string) *request {
	return &request{cmd: cmdStatus, method: http.MethodGet, path: "/2/media/upload", segment: -1,
		query: url.Values{"command": {"STATUS"}, "media_id": {id}}}
}

func (v2Dialect) rateKey(c command) string { return c.rateName() }

func (v2Dialect) parse(_ command, _ int, body []byte) (*Media, error) { return parseMedia(body, now()) }

// formDialect speaks the command style shared by v1.1 and deprecated v2:
// one path, command=… as urlencoded form (INIT, FINALIZE) or multipart
// fields (APPEND), and GET for STATUS.
type formDialect struct {
	path   string
	prefix string // rate-limit key prefix: "" for v2, "v1.1-" for v1.1
}

func (d formDialect) initReq(p InitParams) (*request, error) {
	v := url.Values{
		"command":     {"INIT"},
		"total_bytes": {strconv.FormatInt(p.TotalBytes, 10)},
		"media_type":  {p.MediaType},
	}
	if p.MediaCategory != "" {
		v.Set("media_category", p.MediaCategory)
	}
	if len(p.AdditionalOwners) > 0 {
		v.Set("additional_owners", strings.Join(p.AdditionalOwners, ","))
	}
	if p.Shared {
		v.Set("shared", "true")
	}
	r := &request{cmd: cmdInit, method: http.MethodPost, path: d.path, segment: -1}
	r.body, r.size, r.contentType = formBody(v)
	return r, nil
}

func (d formDialect) appendReq(id string, index int, seg []byte, boundary string) *request {
	r := &request{cmd: cmdAppend, method: http.MethodPost, path: d.path, segment: index}
	r.body, r.size, r.contentType = multipartBody(boundary, [][2]string{
		{"command", "APPEND"}, {"media_id", id}, {"segment_index", strconv.Itoa(index)},
	}, seg)
	return r
}

func (d formDialect) finalizeReq(id string) *request {
	r := &request{cmd: cmdFinalize, method: http.MethodPost, path: d.path, segment: -1}
	r.body, r.size, r.contentType = formBody(url.Values{"command": {"FINALIZE"}, "media_id": {id}})
	return r
}

// statusReq is a GET: X answers a POSTed STATUS with code 38.
func (d formDialect) statusReq(id string) *request {
	return &request{cmd: cmdStatus, method: http.MethodGet, path: d.path, segment: -1,
		query: url.Values{"command": {"STATUS"}, "media_id": {id}}}
}

func (d formDialect) rateKey(c command) string { return d.prefix + c.rateName() }

func (formDialect) parse(_ command, _ int, body []byte) (*Media, error) {
	return parseMedia(body, now())
}
