package xfake

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
)

// The one-shot uploads carry the whole media in one request, without a
// command:
//
//   - v1.1 simple upload: POST /1.1/media/upload.json, multipart media (raw)
//     or media_data (base64), optional media_category and additional_owners.
//     The type is read from the bytes; images and GIFs only (v1_07; a video
//     is "media type unrecognized.", v1_08).
//   - v2 one-shot: POST /2/media/upload, multipart (media, media_category,
//     optional media_type, additional_owners, shared) or JSON (media in
//     base64); images and subtitles only (MediaUploadRequestOneShot,
//     OpenAPI 2.167).
//
// Either is an INIT, one APPEND and a synchronous FINALIZE: the answer is
// that FINALIZE's body, with status 200.

// oneShotForm serves a one-shot upload sent as a form; f holds its spilled
// media.
func (s *Server) oneShotForm(x *exchange, f *form) *response {
	if resp := x.limit(x.keyFor(keyUpload)); resp != nil {
		return resp
	}
	if f.n == 0 {
		return missingParam("media")
	}
	head, err := readHead(f.tmp)
	if err != nil {
		return x.render(opErr(errUnknownMedia))
	}
	var p initParams
	var resp *response
	if x.dialect == dialV11 {
		p, resp = x.v11UploadParams(f.vals, head)
	} else {
		p, resp = x.v2UploadParams(f.vals, head)
	}
	if resp != nil {
		return resp
	}
	tmp := f.tmp
	f.tmp = "" // storeOneShot owns it now
	return s.storeOneShot(x, p, tmp, f.n)
}

// v11UploadParams validates the fields of a v1.1 simple upload. Its
// media_category takes the same spellings as INIT's.
func (x *exchange) v11UploadParams(vals url.Values, head []byte) (initParams, *response) {
	p := initParams{oneShot: true}
	if c, ok := vals["media_category"]; ok {
		cat, resp := x.category(c[0])
		if resp != nil {
			return p, resp
		}
		p.category = cat
	}
	if resp := x.owners(vals); resp != nil {
		return p, resp
	}
	p.mediaType = sniffType(head)
	if !isImageType(p.mediaType) {
		return p, v11RequestError(http.StatusBadRequest, "media type unrecognized.")
	}
	return p, nil
}

// v2UploadParams validates the form fields of a v2 one-shot upload. Missing
// fields are code 38, as on the rest of the command endpoint (v2_09).
func (x *exchange) v2UploadParams(vals url.Values, head []byte) (initParams, *response) {
	p := initParams{oneShot: true}
	c, ok := vals["media_category"]
	if !ok {
		return p, missingParam("media_category")
	}
	if !slices.Contains(oneShotCategories, c[0]) {
		return p, invalidRequest(msgEnum("media_category", oneShotCategories))
	}
	p.category = c[0]
	if resp := x.owners(vals); resp != nil {
		return p, resp
	}
	given := ""
	if t, ok := vals["media_type"]; ok {
		given = t[0]
		if !slices.Contains(oneShotTypes, given) {
			return p, invalidRequest(msgEnum("media_type", oneShotTypes))
		}
	}
	mt, resp := oneShotType(p.category, given, head)
	p.mediaType = mt
	return p, resp
}

// oneShotType is the media type of a v2 one-shot upload: the given
// media_type, else the one the bytes show; subtitles without a magic number
// are SubRip. It must be an image for the image categories and text for
// subtitles; the given type must match the bytes (FINALIZE checks the magic
// numbers; SubRip, which has none, must at least not be a known binary).
func oneShotType(category, given string, head []byte) (string, *response) {
	sniffed := sniffType(head)
	mt := given
	if mt == "" {
		mt = sniffed
		if category == "subtitles" && mt == "" {
			mt = "text/srt"
		}
	}
	wantText := category == "subtitles"
	if !slices.Contains(oneShotTypes, mt) || wantText != strings.HasPrefix(mt, "text/") ||
		(mt == "text/srt" && sniffed != "") {
		return "", opErr(errInvalidMedia).v2()
	}
	return mt, nil
}

// oneShotJSON serves a v2 one-shot upload sent as JSON: media is base64,
// streamed to a spill file while the body is read. Without media it is code
// 38, the answer X gave to a JSON command on this endpoint (v2_09); the other
// fields are checked like the JSON of /initialize.
func (s *Server) oneShotJSON(x *exchange) *response {
	var tmp string
	var n int64
	var spillErr error
	members, err := readJSONObject(x.r.Body, func(src io.Reader) error {
		tmp, n, spillErr = s.store.spill(base64.NewDecoder(base64.StdEncoding, src), s.opts.MaxSegment)
		return spillErr
	})
	defer func() {
		if tmp != "" {
			_ = os.Remove(tmp)
		}
	}()
	if err != nil {
		switch {
		case errors.Is(spillErr, errSpillTooLarge):
			return tooLarge()
		case spillErr != nil && !errors.Is(spillErr, errBadJSON):
			return invalidRequest("$.media: is not a valid base64 string")
		}
		return jsonBodyError(err)
	}
	if _, ok := members["media"]; !ok {
		return missingParam("media")
	}
	if resp := x.limit(keyUpload); resp != nil {
		return resp
	}
	cat, given, errs := oneShotJSONFields(members, tmp != "")
	if len(errs) > 0 {
		return invalidRequest(errs...)
	}
	if n == 0 {
		return missingParam("media")
	}
	head, err := readHead(tmp)
	if err != nil {
		return opErr(errUnknownMedia).v2()
	}
	mt, resp := oneShotType(cat, given, head)
	if resp != nil {
		return resp
	}
	spilled := tmp
	tmp = "" // storeOneShot owns it now
	return s.storeOneShot(x, initParams{mediaType: mt, category: cat, oneShot: true}, spilled, n)
}

// oneShotJSONFields validates the members of a JSON one-shot body
// (additionalProperties false); mediaIsString reports whether media was a
// JSON string.
func oneShotJSONFields(members map[string]json.RawMessage, mediaIsString bool) (category, mediaType string, errs []string) {
	names := make([]string, 0, len(members))
	for k := range members {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		raw := members[k]
		switch k {
		case "media":
			if !mediaIsString {
				errs = append(errs, msgType("media", jsonKind(raw), "string"))
			}
		case "media_category", "media_type":
		case "shared":
			if jsonKind(raw) != "boolean" {
				errs = append(errs, msgType("shared", jsonKind(raw), "boolean"))
			}
		case "additional_owners":
			errs = append(errs, checkOwners(raw)...)
		default:
			errs = append(errs, msgUnknownField(k))
		}
	}
	str := func(field string, list []string) string { return enumField(members, field, list, &errs) }
	if _, ok := members["media_category"]; !ok {
		errs = append(errs, msgMissing("media_category"))
	}
	category = str("media_category", oneShotCategories)
	mediaType = str("media_type", oneShotTypes)
	return category, mediaType, errs
}

// storeOneShot registers the media spilled to tmp (n bytes) and finalizes
// it synchronously; on failure nothing of it is kept.
func (s *Server) storeOneShot(x *exchange, p initParams, tmp string, n int64) *response {
	if n > maxImage { // GIFs with a category included: one request is the 5 MB path
		_ = os.Remove(tmp)
		return x.render(&opError{kind: errFileSize, limit: maxImage})
	}
	p.totalBytes = n
	p.owner = x.id.user
	m := s.store.create(p, s.opts.SessionTTL, s.newID)
	if oerr := s.store.commit(m, 0, tmp, n); oerr != nil {
		s.store.drop(m)
		return x.render(oerr)
	}
	v, oerr := s.store.finalize(m.id, s.opts.MediaTTL)
	if oerr != nil {
		s.store.drop(m)
		return x.render(oerr)
	}
	if x.dialect == dialV11 {
		return v11UploadAnswer(v)
	}
	return v2FinalizeAnswer(v)
}

// readHead returns the first sniffLen bytes of the file at path.
func readHead(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, sniffLen)
	k, err := io.ReadFull(f, head)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return head[:k], err
}
