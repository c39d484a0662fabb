package xfake

import "time"

// view is a consistent snapshot of one media, taken under its lock, from
// which every dialect renders its answers and the inspection endpoint its
// JSON.
type view struct {
	id, key, mediaType, category string
	num                          int64
	state                        mediaState
	total, size                  int64
	async                        bool
	width, height                int
	segments, received           int64
	maxActive, appends           int
	sha                          string
	sessionExpires, mediaExpires time.Time
	firstAppend, finalized       time.Time
	proc                         *processingInfo // nil unless async and finalized
	now                          time.Time
	owner                        string
	meta                         *MediaMetadata
	subs                         []SubtitleTrack
	metaCalls                    int
	subCreates, subDeletes       int
}

type processingInfo struct {
	State           string     `json:"state"`
	CheckAfterSecs  int        `json:"check_after_secs,omitempty"`
	ProgressPercent int        `json:"progress_percent,omitempty"`
	Error           *procError `json:"error,omitempty"`
}

type procError struct {
	Code    int    `json:"code"`
	Name    string `json:"name"`
	Message string `json:"message"`
}

func (st *store) viewLocked(m *media, now time.Time) view {
	v := view{
		id: m.id, key: m.key, mediaType: m.mediaType, category: m.category,
		num: m.num, state: m.state, total: m.total, size: m.size, async: m.async,
		width: m.width, height: m.height, segments: int64(len(m.segs)),
		maxActive: m.maxActive, appends: m.appends, sha: m.sha,
		sessionExpires: m.sessionExpires, mediaExpires: m.mediaExpires,
		firstAppend: m.firstAppend, finalized: m.finalized, now: now,
		owner: m.owner, meta: m.meta.clone(), subs: sortedTracks(m.subs),
		metaCalls: m.metaCalls, subCreates: m.subCreates, subDeletes: m.subDeletes,
	}
	if m.state == stateUploading {
		for _, n := range m.segs {
			v.received += n
		}
		v.size = v.received
	}
	if m.state == stateFinalized && m.async {
		v.proc = processing(now.Sub(m.finalized), st.procTime, m.invalid, m.mediaType)
	}
	return v
}

// processing derives the processing state from the time since FINALIZE:
// pending for the first tenth of procTime, then in_progress with a rising
// progress_percent, then succeeded, or failed with InvalidMedia when the
// bytes did not match the declared type.
func processing(elapsed, procTime time.Duration, invalid bool, mediaType string) *processingInfo {
	switch {
	case elapsed < procTime/10:
		return &processingInfo{State: "pending", CheckAfterSecs: 1}
	case elapsed < procTime:
		pct := int(elapsed * 100 / procTime)
		return &processingInfo{State: "in_progress", CheckAfterSecs: 1, ProgressPercent: min(max(pct, 1), 99)}
	case invalid:
		msg := "Unsupported video format"
		if !isVideo(mediaType) {
			msg = "file is invalid"
		}
		return &processingInfo{State: "failed", ProgressPercent: 100,
			Error: &procError{Code: 1, Name: "InvalidMedia", Message: msg}}
	}
	return &processingInfo{State: "succeeded", ProgressPercent: 100}
}

// stateName is the inspection endpoint's state: uploading before FINALIZE,
// then the processing state (succeeded at once for synchronous media).
func (v view) stateName() string {
	switch {
	case v.state == stateUploading:
		return "uploading"
	case v.proc != nil:
		return v.proc.State
	}
	return "succeeded"
}

// secsLeft is expires_after_secs as of v.now.
func (v view) secsLeft() int64 {
	exp := v.sessionExpires
	if v.state == stateFinalized {
		exp = v.mediaExpires
	}
	return max(int64(exp.Sub(v.now)/time.Second), 0)
}

// snapshot returns the view of the live media with id.
func (st *store) snapshot(id string) (view, *opError) {
	m, oerr := st.lock(id)
	if oerr != nil {
		return view{}, oerr
	}
	defer m.mu.Unlock()
	return st.viewLocked(m, st.now()), nil
}
