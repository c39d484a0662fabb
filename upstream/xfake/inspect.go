package xfake

import (
	"maps"
	"net/http"
	"time"
)

// MediaInfo is what the emulator knows about one media: the data of
// GET /_xfake/media/{id}. Times are omitted from the JSON while zero.
type MediaInfo struct {
	ID            string `json:"id"`
	MediaKey      string `json:"media_key"`
	MediaType     string `json:"media_type"`
	MediaCategory string `json:"media_category"`
	// State is uploading before FINALIZE, then pending, in_progress,
	// succeeded or failed (succeeded at once for synchronous media).
	State      string `json:"state"`
	TotalBytes int64  `json:"total_bytes"`
	// Size is the bytes received so far; after FINALIZE, the media's size.
	Size int64 `json:"size"`
	// SHA256 is the hex digest of the segments concatenated in index order,
	// computed at FINALIZE; empty before.
	SHA256 string `json:"sha256"`
	// Segments is the number of distinct segment indexes received.
	Segments int `json:"segments"`
	// MaxConcurrentAppends is the most APPENDs whose bodies were being read
	// and stored at once. --latency is added before that window, so tests
	// that must see parallel APPENDs overlap cap Bandwidth to give each body
	// measurable time.
	MaxConcurrentAppends int `json:"max_concurrent_appends"`
	// AppendRequests counts APPENDs applied, re-sent segments included.
	AppendRequests int       `json:"append_requests"`
	FirstAppendAt  time.Time `json:"first_append_at,omitzero"`
	FinalizedAt    time.Time `json:"finalized_at,omitzero"`
	// ExpiresAt is when the session (before FINALIZE) or media expires.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Processing reports whether FINALIZE answered processing_info.
	Processing bool `json:"processing"`
	// Metadata is what the metadata endpoints (v2 POST /2/media/metadata,
	// v1.1 media/metadata/create.json) stored; nil before the first.
	Metadata *MediaMetadata `json:"metadata,omitempty"`
	// Subtitles are the tracks attached to this video, by language code.
	Subtitles []SubtitleTrack `json:"subtitles,omitempty"`
	// MetadataRequests, SubtitlesCreateRequests and SubtitlesDeleteRequests
	// count the calls on this media that were applied (an answer lost to
	// a fault afterwards included; refused calls excluded): a client that
	// applies metadata exactly once leaves MetadataRequests at 1. Stats
	// counts every request, refused ones included.
	MetadataRequests        int `json:"metadata_requests"`
	SubtitlesCreateRequests int `json:"subtitles_create_requests"`
	SubtitlesDeleteRequests int `json:"subtitles_delete_requests"`
}

// Stats counts what the emulator saw, for tests and benchmarks.
type Stats struct {
	// Requests counts requests by endpoint key: init, append, finalize,
	// status, upload, metadata, subtitles, lookup, v1.1-init, v1.1-append,
	// v1.1-finalize, v1.1-status, v1.1-upload, v1.1-metadata,
	// v1.1-subtitles, token (both grants), authorize;
	// command-style requests whose command was never read count under
	// v2-command or v1.1.
	Requests map[string]int64 `json:"requests"`
	// MaxConcurrentAppends is the most APPENDs being read and stored at once over all
	// media.
	MaxConcurrentAppends int64 `json:"max_concurrent_appends"`
	// Faults counts injected faults by kind; FaultsInjected is their sum.
	Faults         map[FaultKind]int64 `json:"faults"`
	FaultsInjected int64               `json:"faults_injected"`
	// RateLimited counts requests answered 429.
	RateLimited int64 `json:"rate_limited"`
	// RefreshReuses counts spent refresh tokens presented again while
	// Options.RevokeFamilyOnReuse was on; each revoked its token family.
	RefreshReuses int64 `json:"refresh_reuses"`
}

// Media returns what the emulator knows about the live media with id.
func (s *Server) Media(id string) (MediaInfo, bool) {
	if s.store == nil {
		return MediaInfo{}, false
	}
	v, oerr := s.store.snapshot(id)
	if oerr != nil {
		return MediaInfo{}, false
	}
	info := MediaInfo{
		ID: v.id, MediaKey: v.key, MediaType: v.mediaType, MediaCategory: v.category,
		State: v.stateName(), TotalBytes: v.total, Size: v.size, SHA256: v.sha,
		Segments: int(v.segments), MaxConcurrentAppends: v.maxActive, AppendRequests: v.appends,
		FirstAppendAt: v.firstAppend, FinalizedAt: v.finalized, ExpiresAt: v.sessionExpires,
		Processing: v.async && v.state == stateFinalized,
		Metadata:   v.meta, Subtitles: v.subs, MetadataRequests: v.metaCalls,
		SubtitlesCreateRequests: v.subCreates, SubtitlesDeleteRequests: v.subDeletes,
	}
	if v.state == stateFinalized {
		info.ExpiresAt = v.mediaExpires
	}
	return info, true
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := Stats{Requests: maps.Clone(s.requests), Faults: maps.Clone(s.faults), RateLimited: s.rateLimited}
	for _, n := range s.faults {
		st.FaultsInjected += n
	}
	s.tokens.mu.Lock()
	st.RefreshReuses = s.tokens.reuses
	s.tokens.mu.Unlock()
	if s.store != nil {
		st.MaxConcurrentAppends = s.store.maxActive.Load()
	}
	return st
}

// handleInspect serves GET /_xfake/media/{id}; no authentication.
func (s *Server) handleInspect(w http.ResponseWriter, r *http.Request) {
	info, ok := s.Media(r.PathValue("id"))
	if !ok {
		jsonResponse(http.StatusNotFound, ctJSON, struct {
			Error string `json:"error"`
			ID    string `json:"id"`
		}{"media not found", r.PathValue("id")}).write(w)
		return
	}
	jsonResponse(http.StatusOK, ctJSON, info).write(w)
}

// handleStats serves GET /_xfake/stats; no authentication.
func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	jsonResponse(http.StatusOK, ctJSON, s.Stats()).write(w)
}
