package xfake

import (
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// command serves the command-style endpoints that share v1.1's fields:
// POST /2/media/upload (v2, deprecated) and /1.1/media/upload.json. The
// command, media_id and the other fields may come in the query, a
// urlencoded body or multipart fields.
func (s *Server) command(x *exchange) *response {
	r := x.r
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		if x.dialect == dialCmd && r.Method == http.MethodPost {
			return s.oneShotJSON(x) // without media: code 38 (v2_09)
		}
		return missingParam("media")
	}
	if x.dialect == dialV11 && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return s.v11Status(x)
	}
	if r.Method != http.MethodPost {
		return missingParam("media")
	}
	var m *media // an APPEND counted in flight while its media streams
	begin := func(v url.Values) *response {
		if v.Get("command") != "APPEND" || v.Get("media_id") == "" {
			return nil
		}
		if resp := x.limit(x.keyFor(keyAppend)); resp != nil {
			return resp
		}
		began, oerr := s.store.beginAppend(v.Get("media_id"))
		if oerr != nil {
			return x.render(oerr)
		}
		m = began
		return nil
	}
	f, resp := s.readForm(r, x.dialect, begin)
	if m != nil {
		defer s.store.endAppend(m)
	}
	if resp != nil {
		return resp
	}
	defer f.discard()
	switch cmd := f.vals.Get("command"); cmd {
	case "INIT":
		return s.cmdInit(x, f.vals)
	case "APPEND":
		return s.cmdAppend(x, f, m)
	case "FINALIZE":
		return s.cmdFinalize(x, f.vals)
	case "":
		if f.media {
			return s.oneShotForm(x, f) // v1_07
		}
		return missingParam("media")
	case "STATUS":
		return missingParam("media") // STATUS must be a GET (FACTS §1A)
	default:
		if x.dialect == dialV11 {
			return v11RequestError(http.StatusBadRequest, "Invalid command: "+cmd)
		}
		return invalidRequest(msgEnum("command", []string{"INIT", "APPEND", "FINALIZE"}))
	}
}

// keyFor is the rate-limit key of a v2 operation key in this dialect.
func (x *exchange) keyFor(op string) string {
	if x.dialect == dialV11 {
		return "v1.1-" + op
	}
	return op
}

func (x *exchange) render(oerr *opError) *response {
	if x.dialect == dialV11 {
		return oerr.v11()
	}
	return oerr.v2()
}

// invalid answers one invalid field value: v1.1's {"request","error"} shape
// with v11msg, or the v2 invalid-request shape with v2msg.
func (x *exchange) invalid(v11msg, v2msg string) *response {
	if x.dialect == dialV11 {
		return v11RequestError(http.StatusBadRequest, v11msg)
	}
	return invalidRequest(v2msg)
}

func (s *Server) cmdInit(x *exchange, vals url.Values) *response {
	if resp := x.limit(x.keyFor(keyInit)); resp != nil {
		return resp
	}
	p, resp := x.initForm(vals)
	if resp != nil {
		return resp
	}
	p.owner = x.id.user
	m := s.store.create(p, s.opts.SessionTTL, s.newID)
	v := view{id: m.id, num: m.num, key: m.key, category: m.category, sessionExpires: m.sessionExpires, now: m.sessionExpires.Add(-s.opts.SessionTTL)}
	if x.dialect == dialV11 {
		return v11InitAnswer(v)
	}
	return v2InitAnswer(http.StatusAccepted, v)
}

// v11PlainSubtitles reports a v1.1 INIT of media_type text/plain with
// media_category subtitles: how twitter-api-v2's v1 uploadMedia sends an
// SRT track (its EUploadMimeType.Srt is text/plain), the way that client
// has attached subtitles through X's v1.1 since it added them. X's v2
// media_type list has only text/srt and text/vtt, so v2 stays strict.
func (x *exchange) v11PlainSubtitles(vals url.Values) bool {
	if x.dialect != dialV11 || vals.Get("media_type") != "text/plain" {
		return false
	}
	cat, ok := v11Category(vals.Get("media_category"))
	return ok && cat == "subtitles"
}

// initForm validates INIT's form fields.
func (x *exchange) initForm(vals url.Values) (initParams, *response) {
	var p initParams
	for _, f := range []string{"total_bytes", "media_type"} {
		if vals.Get(f) == "" {
			return p, missingParam(f)
		}
	}
	p.mediaType = vals.Get("media_type")
	if !slices.Contains(mediaTypes, p.mediaType) && !x.v11PlainSubtitles(vals) {
		return p, x.invalid("media type unrecognized.", msgEnum("media_type", mediaTypes))
	}
	const totalMsg = "total_bytes must be an integer between 1 and 17179869184."
	n, err := strconv.ParseInt(vals.Get("total_bytes"), 10, 64)
	if err != nil {
		return p, x.invalid(totalMsg, msgType("total_bytes", "string", "integer"))
	}
	if msg := checkTotal(n); msg != "" {
		return p, x.invalid(totalMsg, msg)
	}
	p.totalBytes = n
	if c, ok := vals["media_category"]; ok {
		cat, resp := x.category(c[0])
		if resp != nil {
			return p, resp
		}
		p.category = cat
	}
	return p, x.owners(vals)
}

// category validates a form's media_category and returns its canonical
// name: v1.1 also takes the CamelCase and joined spellings (v11Category),
// the v2 command style only the snake_case names.
func (x *exchange) category(c string) (string, *response) {
	if x.dialect == dialV11 {
		if cat, ok := v11Category(c); ok {
			return cat, nil
		}
	} else if slices.Contains(mediaCategories, c) {
		return c, nil
	}
	return "", x.invalid("Invalid media_category.", msgEnum("media_category", mediaCategories))
}

// owners validates a form's comma-separated additional_owners.
func (x *exchange) owners(vals url.Values) *response {
	owners := vals.Get("additional_owners")
	if owners == "" {
		return nil
	}
	list := strings.Split(owners, ",")
	if len(list) > 100 {
		return x.invalid("Too many additional_owners.", "$.additional_owners: there must be a maximum of 100 items in the array")
	}
	for _, o := range list {
		if !idPattern.MatchString(strings.TrimSpace(o)) {
			return x.invalid("Invalid additional_owners.", msgPattern("additional_owners", idPattern.String()))
		}
	}
	return nil
}

// cmdAppend commits the spilled media of f as a segment; m is the media if
// the APPEND was already counted in flight while the media streamed.
func (s *Server) cmdAppend(x *exchange, f *form, m *media) *response {
	if m == nil {
		if resp := x.limit(x.keyFor(keyAppend)); resp != nil {
			return resp
		}
		id := f.vals.Get("media_id")
		if id == "" {
			return missingParam("media_id")
		}
		began, oerr := s.store.beginAppend(id)
		if oerr != nil {
			return x.render(oerr)
		}
		defer s.store.endAppend(began)
		m = began
	}
	if !f.media {
		return missingParam("media")
	}
	raw := f.vals.Get("segment_index")
	if raw == "" {
		return missingParam("segment_index")
	}
	idx, oerr, msg := segmentIndex(raw)
	switch {
	case oerr != nil:
		return x.render(oerr)
	case msg != "":
		return x.invalid(opErr(errSegmentIndex).message(), msg)
	}
	tmp := f.tmp
	f.tmp = "" // commit owns it now
	if oerr := s.store.commit(m, idx, tmp, f.n); oerr != nil {
		return x.render(oerr)
	}
	if x.dialect == dialV11 {
		return v11AppendAnswer(m.id)
	}
	return emptyResponse(http.StatusNoContent, "")
}

func (s *Server) cmdFinalize(x *exchange, vals url.Values) *response {
	if resp := x.limit(x.keyFor(keyFinalize)); resp != nil {
		return resp
	}
	id := vals.Get("media_id")
	if id == "" {
		return missingParam("media_id")
	}
	v, oerr := s.store.finalize(id, s.opts.MediaTTL)
	if oerr != nil {
		return x.render(oerr)
	}
	if x.dialect == dialV11 {
		return v11FinalizeAnswer(v)
	}
	return v2FinalizeAnswer(v)
}
