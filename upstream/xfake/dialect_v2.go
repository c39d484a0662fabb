package xfake

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
)

// Bodies of the v2 dialects (dedicated and command style), wrapped in "data".

type dataWrap struct {
	Data any `json:"data"`
}

type v2Media struct {
	ID               string          `json:"id"`
	MediaKey         string          `json:"media_key"`
	ExpiresAfterSecs int64           `json:"expires_after_secs"`
	ProcessingInfo   *processingInfo `json:"processing_info,omitempty"`
	Size             int64           `json:"size,omitempty"`
	Image            *imageInfo      `json:"image,omitempty"`
	Video            *videoInfo      `json:"video,omitempty"`
}

type imageInfo struct {
	ImageType string `json:"image_type"`
	W         int    `json:"w"`
	H         int    `json:"h"`
}

type videoInfo struct {
	VideoType string `json:"video_type"`
}

// finalizeInfo is the image or video object of a synchronous FINALIZE.
func (v view) finalizeInfo() (*imageInfo, *videoInfo) {
	switch {
	case v.proc != nil:
		return nil, nil
	case isVideo(v.mediaType):
		return nil, &videoInfo{VideoType: v.mediaType}
	case isImageType(v.mediaType):
		return &imageInfo{ImageType: v.mediaType, W: v.width, H: v.height}, nil
	}
	return nil, nil
}

func v2InitAnswer(status int, v view) *response {
	return jsonResponse(status, ctJSON, dataWrap{v2Media{ID: v.id, MediaKey: v.key, ExpiresAfterSecs: v.secsLeft()}})
}

func v2FinalizeAnswer(v view) *response {
	img, vid := v.finalizeInfo()
	return jsonResponse(http.StatusOK, ctJSON, dataWrap{v2Media{ID: v.id, MediaKey: v.key,
		ExpiresAfterSecs: v.secsLeft(), ProcessingInfo: v.proc, Size: v.size, Image: img, Video: vid}})
}

func v2StatusAnswer(v view) *response {
	return jsonResponse(http.StatusOK, ctJSON, dataWrap{v2Media{ID: v.id, MediaKey: v.key,
		ExpiresAfterSecs: v.secsLeft(), ProcessingInfo: v.proc, Size: v.size}})
}

// v2Init serves POST /2/media/upload/initialize: a JSON body only, unknown
// members refused.
func (s *Server) v2Init(x *exchange) *response {
	if resp := x.limit(keyInit); resp != nil {
		return resp
	}
	members, err := readJSONObject(io.LimitReader(x.r.Body, 1<<20), func(r io.Reader) error {
		_, err := io.Copy(io.Discard, io.LimitReader(r, maxField))
		return err
	})
	if resp := jsonBodyError(err); resp != nil {
		return resp
	}
	p, errs := initV2JSON(members)
	if len(errs) > 0 {
		return invalidRequest(errs...)
	}
	p.owner = x.id.user
	m := s.store.create(p, s.opts.SessionTTL, s.newID)
	return v2InitAnswer(http.StatusOK, view{id: m.id, key: m.key, sessionExpires: m.sessionExpires, now: m.sessionExpires.Add(-s.opts.SessionTTL)})
}

func jsonBodyError(err error) *response {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNotObject):
		return invalidRequest("Request body must be a JSON object.")
	}
	return invalidRequest("Request body is not valid JSON.")
}

// v2Append serves POST /2/media/upload/{id}/append: multipart (media,
// segment_index) or JSON (base64 media, segment_index); 200 with the
// session's expires_at in epoch milliseconds (v2_05).
func (s *Server) v2Append(x *exchange) *response {
	if resp := x.limit(keyAppend); resp != nil {
		return resp
	}
	id := x.r.PathValue("id")
	if !idPattern.MatchString(id) {
		return invalidRequest(msgPattern("id", idPattern.String()))
	}
	m, oerr := s.store.beginAppend(id)
	if oerr != nil {
		return oerr.v2()
	}
	defer s.store.endAppend(m)
	seg, resp := s.readV2Append(x.r)
	if resp != nil {
		return resp
	}
	if oerr := s.store.commit(m, seg.idx, seg.tmp, seg.n); oerr != nil {
		return oerr.v2()
	}
	return jsonResponse(http.StatusOK, ctJSON, dataWrap{struct {
		ExpiresAt int64 `json:"expires_at"`
	}{m.sessionExpires.UnixMilli()}})
}

// segment is a spilled APPEND segment not yet committed.
type segment struct {
	idx int
	tmp string
	n   int64
}

func (s *Server) readV2Append(r *http.Request) (segment, *response) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "multipart/form-data" {
		f, resp := s.readForm(r, dialV2, func(url.Values) *response { return nil })
		if resp != nil {
			return segment{}, resp
		}
		return checkSegment(f.vals["segment_index"], f.tmp, f.n, f.media)
	}
	var seg segment
	var spillErr error
	members, err := readJSONObject(r.Body, func(src io.Reader) error {
		seg.tmp, seg.n, spillErr = s.store.spill(base64.NewDecoder(base64.StdEncoding, src), s.opts.MaxSegment)
		return spillErr
	})
	if err != nil {
		if seg.tmp != "" {
			_ = os.Remove(seg.tmp)
		}
		switch {
		case errors.Is(spillErr, errSpillTooLarge):
			return segment{}, tooLarge()
		case spillErr != nil && !errors.Is(spillErr, errBadJSON):
			return segment{}, invalidRequest("$.media: is not a valid base64 string")
		}
		return segment{}, jsonBodyError(err)
	}
	fail := func(resp *response) (segment, *response) {
		if seg.tmp != "" {
			_ = os.Remove(seg.tmp)
		}
		return segment{}, resp
	}
	var errs []string
	for k, raw := range members {
		switch k {
		case "segment_index":
		case "media":
			if seg.tmp == "" {
				errs = append(errs, msgType("media", jsonKind(raw), "string"))
			}
		default:
			errs = append(errs, msgUnknownField(k))
		}
	}
	if _, ok := members["media"]; !ok {
		errs = append(errs, msgMissing("media"))
	}
	raw, ok := members["segment_index"]
	if !ok {
		errs = append(errs, msgMissing("segment_index"))
	}
	if len(errs) > 0 {
		return fail(invalidRequest(errs...))
	}
	i, oerr, msg := segmentIndexJSON(raw)
	switch {
	case oerr != nil:
		return fail(oerr.v2())
	case msg != "":
		return fail(invalidRequest(msg))
	}
	seg.idx = i
	return seg, nil
}

// checkSegment validates the segment_index and media of a v2 APPEND.
func checkSegment(idx []string, tmp string, n int64, hasMedia bool) (segment, *response) {
	fail := func(resp *response) (segment, *response) {
		if tmp != "" {
			_ = os.Remove(tmp)
		}
		return segment{}, resp
	}
	var errs []string
	if !hasMedia {
		errs = append(errs, msgMissing("media"))
	}
	if len(idx) == 0 {
		errs = append(errs, msgMissing("segment_index"))
	}
	if len(errs) > 0 {
		return fail(invalidRequest(errs...))
	}
	i, oerr, msg := segmentIndex(idx[0])
	switch {
	case oerr != nil:
		return fail(oerr.v2())
	case msg != "":
		return fail(invalidRequest(msg))
	}
	return segment{idx: i, tmp: tmp, n: n}, nil
}

// v2Finalize serves POST /2/media/upload/{id}/finalize (no body needed).
func (s *Server) v2Finalize(x *exchange) *response {
	if resp := x.limit(keyFinalize); resp != nil {
		return resp
	}
	id := x.r.PathValue("id")
	if !idPattern.MatchString(id) {
		return invalidRequest(msgPattern("id", idPattern.String()))
	}
	v, oerr := s.store.finalize(id, s.opts.MediaTTL)
	if oerr != nil {
		return oerr.v2()
	}
	return v2FinalizeAnswer(v)
}

// v2Status serves GET /2/media/upload?command=STATUS&media_id= (command
// optional), shared by both v2 dialects.
func (s *Server) v2Status(x *exchange) *response {
	if resp := x.limit(keyStatus); resp != nil {
		return resp
	}
	q := x.r.URL.Query()
	if c, ok := q["command"]; ok && (len(c) != 1 || c[0] != "STATUS") {
		return invalidRequest(msgEnum("command", []string{"STATUS"}))
	}
	id := q.Get("media_id")
	switch {
	case id == "":
		return invalidRequest(msgMissing("media_id"))
	case !idPattern.MatchString(id):
		return invalidRequest(msgPattern("media_id", idPattern.String()))
	}
	v, oerr := s.store.snapshot(id)
	if oerr != nil {
		return oerr.v2()
	}
	if v.proc == nil {
		return opErr(errNotProcessed).v2()
	}
	return v2StatusAnswer(v)
}
