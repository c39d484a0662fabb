package xfake

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// maxField is the longest non-media form field read.
const maxField = 64 << 10

// form is a command-style request: query parameters overlaid with the
// fields of a urlencoded or multipart body, and the APPEND media, spilled.
type form struct {
	vals  url.Values
	tmp   string // spilled media ("" when none)
	n     int64
	media bool
}

// discard removes the spilled media, if any.
func (f *form) discard() {
	if f.tmp != "" {
		_ = os.Remove(f.tmp)
		f.tmp = ""
	}
}

// readForm reads a command-style request. The media part (raw "media" or
// base64 "media_data") is streamed to a spill file; before that, begin is
// called with the fields seen so far, so that an APPEND can be counted in
// flight (or refused) while its bytes stream. begin's answer, a 413 or a
// malformed body end the read with that answer.
func (s *Server) readForm(r *http.Request, d dialect, begin func(url.Values) *response) (*form, *response) {
	f := &form{vals: r.URL.Query()}
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var resp *response
	switch ct {
	case "multipart/form-data":
		resp = s.readMultipart(r, params["boundary"], f, d, begin)
	case "application/x-www-form-urlencoded":
		resp = s.readURLEncoded(r, f, d, begin)
	}
	if resp != nil {
		f.discard()
		return nil, resp
	}
	return f, nil
}

func (s *Server) readMultipart(r *http.Request, boundary string, f *form, d dialect, begin func(url.Values) *response) *response {
	if boundary == "" {
		return badForm(d)
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return badForm(d)
	}
	bodyVals := url.Values{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return badForm(d)
		}
		name := part.FormName()
		switch {
		case name == "media" || name == "media_data":
			if f.media {
				return badForm(d)
			}
			f.media = true
			if resp := begin(f.vals); resp != nil {
				return resp
			}
			var src io.Reader = part
			if name == "media_data" {
				src = base64.NewDecoder(base64.StdEncoding, part)
			}
			if resp := s.spillInto(f, src, d); resp != nil {
				return resp
			}
		case name != "":
			b, err := io.ReadAll(io.LimitReader(part, maxField+1))
			if err != nil || len(b) > maxField {
				return badForm(d)
			}
			if _, seen := bodyVals[name]; !seen {
				f.vals.Del(name) // a body field overrides the query
			}
			bodyVals.Add(name, string(b))
			f.vals.Add(name, string(b))
		}
		_ = part.Close()
	}
	return nil
}

func (s *Server) readURLEncoded(r *http.Request, f *form, d dialect, begin func(url.Values) *response) *response {
	// ParseForm may already have run for the OAuth 1.0a signature.
	if err := r.ParseForm(); err != nil {
		return badForm(d)
	}
	for k, v := range r.PostForm {
		f.vals[k] = v
	}
	raw, isData := f.vals.Get("media"), false
	if d64 := f.vals.Get("media_data"); d64 != "" {
		if raw != "" {
			return badForm(d)
		}
		raw, isData = d64, true
	}
	if raw == "" {
		return nil
	}
	f.media = true
	if resp := begin(f.vals); resp != nil {
		return resp
	}
	var src io.Reader = strings.NewReader(raw)
	if isData {
		src = base64.NewDecoder(base64.StdEncoding, src)
	}
	return s.spillInto(f, src, d)
}

func (s *Server) spillInto(f *form, src io.Reader, d dialect) *response {
	tmp, n, err := s.store.spill(src, s.opts.MaxSegment)
	switch {
	case errors.Is(err, errSpillTooLarge):
		return tooLarge()
	case err != nil:
		return badForm(d)
	}
	f.tmp, f.n = tmp, n
	return nil
}

// badForm answers a body that cannot be read as a form.
func badForm(d dialect) *response {
	if d == dialV11 {
		return v11RequestError(http.StatusBadRequest, "Invalid request body.")
	}
	return invalidRequest("Request body is not a valid form.")
}
