package xfake

import (
	"net/http"
	"strconv"
)

// v11Path is the v1.1 upload path, echoed in v1.1's {"request","error"}
// errors.
const v11Path = "/1.1/media/upload.json"

type v11Media struct {
	MediaID          int64           `json:"media_id"`
	MediaIDString    string          `json:"media_id_string"`
	MediaKey         string          `json:"media_key,omitempty"`
	Size             int64           `json:"size,omitempty"`
	ExpiresAfterSecs int64           `json:"expires_after_secs"`
	ProcessingInfo   *processingInfo `json:"processing_info,omitempty"`
	Image            *imageInfo      `json:"image,omitempty"`
	Video            *videoInfo      `json:"video,omitempty"`
}

// v11Body is the common v1.1 media object; media_key only appears when INIT
// had a media_category (v1_01 vs v1_05).
func v11Body(v view) v11Media {
	b := v11Media{MediaID: v.num, MediaIDString: v.id, ExpiresAfterSecs: v.secsLeft()}
	if b.MediaID == 0 {
		b.MediaID, _ = strconv.ParseInt(v.id, 10, 64)
	}
	if v.category != "" {
		b.MediaKey = v.key
	}
	return b
}

// v11InitAnswer is INIT's 202 with the x-mediaid header (v1_01, v1_05).
func v11InitAnswer(v view) *response {
	return jsonResponse(http.StatusAccepted, ctV11JSON, v11Body(v)).setHeader("x-mediaid", v.id)
}

// v11AppendAnswer is APPEND's empty 204 with X's x-mediaid, x-segmentcount
// and x-totalbytes headers. X sent 0 in both counters on every recorded
// APPEND, the second segment's included (v1_02, v1_03), so the emulator
// sends 0 too rather than a count X never gave.
func v11AppendAnswer(id string) *response {
	return emptyResponse(http.StatusNoContent, ctV11Text).setHeader("x-mediaid", id).
		setHeader("x-segmentcount", "0").setHeader("x-totalbytes", "0")
}

// v11FinalizeAnswer is 201 with x-mediaid for a synchronous FINALIZE
// (v1_04), 200 with processing_info and no x-mediaid for an asynchronous
// one (v1_06).
func v11FinalizeAnswer(v view) *response {
	b := v11Body(v)
	b.Size = v.size
	b.ProcessingInfo = v.proc
	b.Image, b.Video = v.finalizeInfo()
	if v.proc != nil {
		return jsonResponse(http.StatusOK, ctV11JSON, b)
	}
	return jsonResponse(http.StatusCreated, ctV11JSON, b).setHeader("x-mediaid", v.id)
}

// v11UploadAnswer is the simple upload's 200: the synchronous FINALIZE body,
// without x-mediaid (v1_07).
func v11UploadAnswer(v view) *response {
	b := v11Body(v)
	b.Size = v.size
	b.Image, b.Video = v.finalizeInfo()
	return jsonResponse(http.StatusOK, ctV11JSON, b)
}

// v11Status serves GET /1.1/media/upload.json?command=STATUS&media_id=.
func (s *Server) v11Status(x *exchange) *response {
	q := x.r.URL.Query()
	switch q.Get("command") {
	case "STATUS":
	case "":
		return missingParam("command")
	default:
		return v11RequestError(http.StatusBadRequest, "Invalid command: "+q.Get("command"))
	}
	if resp := x.limit(keyV11Status); resp != nil {
		return resp
	}
	id := q.Get("media_id")
	if id == "" {
		return missingParam("media_id")
	}
	// Unknown, expired and never-processed media alike are 404 on v1.1
	// (drswork/go-twitter#16: STATUS before FINALIZE).
	v, oerr := s.store.snapshot(id)
	if oerr != nil || v.proc == nil {
		return opErr(errNotProcessed).v11()
	}
	b := v11Body(v)
	b.Size = v.size
	b.ProcessingInfo = v.proc
	if v.proc.State == "succeeded" && isVideo(v.mediaType) {
		b.Video = &videoInfo{VideoType: v.mediaType}
	}
	return jsonResponse(http.StatusOK, ctV11JSON, b)
}
