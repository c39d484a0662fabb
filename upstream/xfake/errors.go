package xfake

import (
	"net/http"
	"strconv"
)

// opError is a failure of an upload operation, independent of dialect; each
// dialect renders it in its own shape (see [opError.v2] and [opError.v11]).
type opError struct {
	kind  errKind
	limit int64 // errFileSize: the byte limit exceeded
}

type errKind int

const (
	errUnknownMedia errKind = iota + 1 // unknown or expired media id
	errFinalized                       // APPEND or FINALIZE after FINALIZE
	errSegments                        // segments not 0..n-1 or not summing to total_bytes
	errSegmentIndex                    // segment_index outside 0..999
	errTooLarge                        // segment over MaxSegment
	errInvalidMedia                    // bytes do not match the declared type (sync)
	errLargeSync                       // video over 15 MiB without media_category
	errFileSize                        // image or GIF over its limit
	errNotProcessed                    // STATUS on media that never had processing
)

func (e *opError) Error() string { return "xfake: " + e.message() }

func (e *opError) message() string {
	switch e.kind {
	case errUnknownMedia, errNotProcessed:
		return "BadRequest: Not found"
	case errFinalized:
		return "BadRequest: Media already finalized"
	case errSegments:
		return "Segments do not add up to provided total file size."
	case errSegmentIndex:
		return "SegmentIndex must be between 0 and 999."
	case errTooLarge:
		return "Request Entity Too Large"
	case errInvalidMedia:
		return "InvalidMedia"
	case errLargeSync:
		return "Large file can not be finalized synchronously."
	case errFileSize:
		return "File size exceeds " + strconv.FormatInt(e.limit, 10) + " bytes."
	}
	if m := metaMessage(e.kind); m != "" {
		return m
	}
	return "BadRequest"
}

// v2 renders the error for the v2 dedicated and command-style endpoints.
func (e *opError) v2() *response {
	switch e.kind {
	case errTooLarge:
		return tooLarge()
	case errNotOwner:
		return problemResponse(http.StatusForbidden)
	}
	return invalidRequest(e.message())
}

// v11 renders the error for /1.1/media/upload.json.
func (e *opError) v11() *response {
	switch e.kind {
	case errTooLarge:
		return tooLarge()
	case errUnknownMedia:
		return codeError(http.StatusBadRequest, 324, "Invalid media id.")
	case errNotProcessed:
		return codeError(http.StatusNotFound, 324, "Invalid media id.")
	case errFinalized:
		return codeError(http.StatusBadRequest, 324, "Media id already finalized.")
	case errInvalidMedia:
		return v11RequestError(http.StatusBadRequest, "media type unrecognized.")
	case errNotOwner:
		return codeError(http.StatusForbidden, 324, "Forbidden.")
	}
	if m := metaMessage(e.kind); m != "" {
		return codeError(http.StatusBadRequest, 324, m)
	}
	return v11RequestError(http.StatusBadRequest, e.message())
}

func opErr(k errKind) *opError { return &opError{kind: k} }
