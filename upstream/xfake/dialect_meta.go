package xfake

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
)

// The calls made after an upload: metadata (alt text and the rest) and
// subtitles, in the v2 JSON shapes and the v1.1 ones. Both v2 dialects use
// the v2 endpoints; v1.1 has its own paths with JSON bodies.

// v2Metadata serves POST /2/media/metadata {"id", "metadata":{…}}; 200
// {"data":{"id","associated_metadata":{…}}}.
func (s *Server) v2Metadata(x *exchange) *response {
	if resp := x.limit(keyMetadata); resp != nil {
		return resp
	}
	members, err := readSmallJSON(x.r)
	if resp := jsonBodyError(err); resp != nil {
		return resp
	}
	// X answered a body without "metadata" ({"id","alt_text":{…}}) with 500
	// (node-twitter-api-v2#579): the emulator does the same.
	if _, ok := members["metadata"]; !ok {
		return internalError500V2()
	}
	var c checker
	c.only(members, "id", "metadata")
	id := c.id(members, "", "id", false)
	md := c.metadataV2(members["metadata"])
	if len(c.errs) > 0 {
		return invalidRequest(c.sorted()...)
	}
	v, oerr := s.store.setMetadata(id, x.id.user, md, false)
	if oerr != nil {
		return oerr.v2()
	}
	return jsonResponse(http.StatusOK, ctJSON, dataWrap{struct {
		ID         string         `json:"id"`
		Associated map[string]any `json:"associated_metadata"`
	}{v.id, v.meta.associated()}})
}

// v2SubtitlesCreate serves POST /2/media/subtitles {"id", "media_category",
// "subtitles":{"id","language_code","display_name"}}; 200
// {"data":{"id","media_category","associated_subtitles":[…]}}.
func (s *Server) v2SubtitlesCreate(x *exchange) *response {
	if resp := x.limit(keySubtitles); resp != nil {
		return resp
	}
	members, err := readSmallJSON(x.r)
	if resp := jsonBodyError(err); resp != nil {
		return resp
	}
	var c checker
	c.only(members, "id", "media_category", "subtitles")
	id := c.id(members, "", "id", false)
	cat := c.subtitleCategory(members)
	var t SubtitleTrack
	if raw, ok := members["subtitles"]; ok {
		t = c.track(raw, "subtitles", "id", false)
	} else {
		c.add(msgMissing("subtitles"))
	}
	if len(c.errs) > 0 {
		return invalidRequest(c.sorted()...)
	}
	v, oerr := s.store.attachSubtitles(id, cat, x.id.user, []SubtitleTrack{t})
	if oerr != nil {
		return oerr.v2()
	}
	return jsonResponse(http.StatusOK, ctJSON, dataWrap{struct {
		ID         string          `json:"id"`
		Category   string          `json:"media_category"`
		Associated []SubtitleTrack `json:"associated_subtitles"`
	}{v.id, cat, v.subs}})
}

// v2SubtitlesDelete serves DELETE /2/media/subtitles {"id",
// "media_category", "language_code"}; 200 {"data":{"deleted":true}}.
func (s *Server) v2SubtitlesDelete(x *exchange) *response {
	if resp := x.limit(keySubtitles); resp != nil {
		return resp
	}
	members, err := readSmallJSON(x.r)
	if resp := jsonBodyError(err); resp != nil {
		return resp
	}
	var c checker
	c.only(members, "id", "media_category", "language_code")
	id := c.id(members, "", "id", false)
	cat := c.subtitleCategory(members)
	lang := c.language(members, "")
	if len(c.errs) > 0 {
		return invalidRequest(c.sorted()...)
	}
	if _, oerr := s.store.detachSubtitles(id, cat, x.id.user, []string{lang}); oerr != nil {
		return oerr.v2()
	}
	return jsonResponse(http.StatusOK, ctJSON, dataWrap{struct {
		Deleted bool `json:"deleted"`
	}{true}})
}

// v1.1: JSON bodies (application/json or text/plain), 200 with an empty
// body on success, {"errors":[{code,message}]} otherwise: 38 for a missing
// parameter, 44 for an invalid one, 324 for media that cannot take the
// call.

// v11JSON reads a v1.1 JSON body, or the error answer.
func v11JSON(x *exchange) (map[string]json.RawMessage, *response) {
	members, err := readSmallJSON(x.r)
	if err != nil {
		if errors.Is(err, errNotObject) {
			return nil, codeError(http.StatusBadRequest, 44, "Request body must be a JSON object.")
		}
		return nil, codeError(http.StatusBadRequest, 44, "Request body is not valid JSON.")
	}
	return members, nil
}

// v11Invalid turns validation messages into v1.1's answer: code 38 when a
// parameter is missing, else 44, naming the first problem.
func v11Invalid(c *checker, missing map[string]bool) *response {
	for name, gone := range missing {
		if gone {
			return missingParam(name)
		}
	}
	return codeError(http.StatusBadRequest, 44, c.sorted()[0])
}

// v11Metadata serves POST /1.1/media/metadata/create.json {"media_id",
// "alt_text":{"text"}, "sensitive_media_warning":["adult_content",
// "graphic_violence","other"]}. The v1.1 page documents alt text for images
// and GIFs only, so alt text on a video is refused.
func (s *Server) v11Metadata(x *exchange) *response {
	if resp := x.limit(keyV11Metadata); resp != nil {
		return resp
	}
	members, resp := v11JSON(x)
	if resp != nil {
		return resp
	}
	var c checker
	c.only(members, "media_id", "alt_text", "sensitive_media_warning")
	_, hasID := members["media_id"]
	id := c.id(members, "", "media_id", true)
	md := &MediaMetadata{}
	if _, ok := members["alt_text"]; ok {
		md.AltText = c.altText(members, "")
	}
	if _, ok := members["sensitive_media_warning"]; ok {
		names := []string{"adult_content", "graphic_violence", "other"}
		got := c.list(members, "", "sensitive_media_warning", func(s string) bool { return slices.Contains(names, s) },
			"does not have a value in the enumeration [adult_content, graphic_violence, other]")
		md.SensitiveMediaWarning = &SensitiveMediaWarning{AdultContent: slices.Contains(got, "adult_content"),
			GraphicViolence: slices.Contains(got, "graphic_violence"), Other: slices.Contains(got, "other")}
	}
	if len(c.errs) > 0 {
		return v11Invalid(&c, map[string]bool{"media_id": !hasID})
	}
	if _, oerr := s.store.setMetadata(id, x.id.user, md, true); oerr != nil {
		return oerr.v11()
	}
	return emptyResponse(http.StatusOK, ctV11JSON)
}

// v11SubtitlesCreate serves POST /1.1/media/subtitles/create.json
// {"media_id","media_category","subtitle_info":{"subtitles":[{"media_id",
// "language_code","display_name"}]}}.
func (s *Server) v11SubtitlesCreate(x *exchange) *response {
	return s.v11Subtitles(x, true)
}

// v11SubtitlesDelete serves POST /1.1/media/subtitles/delete.json
// {"media_id","media_category","subtitle_info":{"subtitles":[{"language_code"}]}}.
func (s *Server) v11SubtitlesDelete(x *exchange) *response {
	return s.v11Subtitles(x, false)
}

func (s *Server) v11Subtitles(x *exchange, create bool) *response {
	if resp := x.limit(keyV11Subtitles); resp != nil {
		return resp
	}
	members, resp := v11JSON(x)
	if resp != nil {
		return resp
	}
	var c checker
	c.only(members, "media_id", "media_category", "subtitle_info")
	_, hasID := members["media_id"]
	_, hasInfo := members["subtitle_info"]
	id := c.id(members, "", "media_id", true)
	cat := c.subtitleCategory(members)
	var tracks []SubtitleTrack
	var langs []string
	if hasInfo {
		if info := c.object(members["subtitle_info"], "subtitle_info", "subtitles"); info != nil {
			var items []json.RawMessage
			if k := jsonKind(info["subtitles"]); k != "array" {
				c.add(msgType("subtitle_info.subtitles", k, "array"))
			} else if _ = json.Unmarshal(info["subtitles"], &items); len(items) == 0 {
				c.add("$.subtitle_info.subtitles: there must be a minimum of 1 items in the array")
			}
			for i, it := range items {
				path := "subtitle_info.subtitles[" + strconv.Itoa(i) + "]"
				if create {
					tracks = append(tracks, c.track(it, path, "media_id", true))
				} else if o := c.object(it, path, "language_code"); o != nil {
					langs = append(langs, c.language(o, path+"."))
				}
			}
		}
	}
	if len(c.errs) > 0 || !hasInfo {
		return v11Invalid(&c, map[string]bool{"media_id": !hasID, "subtitle_info": !hasInfo})
	}
	var oerr *opError
	if create {
		_, oerr = s.store.attachSubtitles(id, cat, x.id.user, tracks)
	} else {
		_, oerr = s.store.detachSubtitles(id, cat, x.id.user, langs)
	}
	if oerr != nil {
		return oerr.v11()
	}
	return emptyResponse(http.StatusOK, ctV11JSON)
}
