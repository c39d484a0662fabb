package xfake

import (
	"encoding/json"
	"maps"
	"slices"
)

// MediaMetadata is what the metadata endpoints stored for one media, in
// the shape of X's associated_metadata (POST /2/media/metadata answers it).
// Each call sets the members it carries and keeps the others.
type MediaMetadata struct {
	AltText               *AltText               `json:"alt_text,omitempty"`
	SensitiveMediaWarning *SensitiveMediaWarning `json:"sensitive_media_warning,omitempty"`
	AllowDownloadStatus   *AllowDownloadStatus   `json:"allow_download_status,omitempty"`
	AudiencePolicy        *AudiencePolicy        `json:"audience_policy,omitempty"`
	GeoRestrictions       *GeoRestrictions       `json:"geo_restrictions,omitempty"`
	ContentExpiration     *ContentExpiration     `json:"content_expiration,omitempty"`
	FoundMediaOrigin      *FoundMediaOrigin      `json:"found_media_origin,omitempty"`
	// Other holds the members X documents with loose shapes
	// (domain_restrictions, management_info, preview_image, shared_info,
	// sticker_info, upload_source), as sent: objects checked for being
	// objects, nothing more.
	Other map[string]json.RawMessage `json:"other,omitempty"`
}

// AltText is metadata.alt_text.
type AltText struct {
	Text string `json:"text"`
}

// SensitiveMediaWarning is metadata.sensitive_media_warning (v2), or the
// v1.1 list of warning names mapped onto it.
type SensitiveMediaWarning struct {
	AdultContent    bool `json:"adult_content"`
	GraphicViolence bool `json:"graphic_violence"`
	Other           bool `json:"other"`
}

// AllowDownloadStatus is metadata.allow_download_status.
type AllowDownloadStatus struct {
	AllowDownload bool `json:"allow_download"`
}

// AudiencePolicy is metadata.audience_policy; X's only documented item is
// "Any".
type AudiencePolicy struct {
	CreatorSubscriptions []string `json:"creator_subscriptions,omitempty"`
	XSubscriptions       []string `json:"x_subscriptions,omitempty"`
}

// GeoRestrictions is metadata.geo_restrictions: two-letter country codes.
type GeoRestrictions struct {
	BlacklistedCountryCodes []string `json:"blacklisted_country_codes,omitempty"`
	WhitelistedCountryCodes []string `json:"whitelisted_country_codes,omitempty"`
}

// ContentExpiration is metadata.content_expiration (Unix seconds).
type ContentExpiration struct {
	TimestampSec int64 `json:"timestamp_sec"`
}

// FoundMediaOrigin is metadata.found_media_origin.
type FoundMediaOrigin struct {
	ID       string `json:"id"`
	Provider string `json:"provider,omitempty"`
}

// SubtitleTrack is one subtitles media attached to a video.
type SubtitleTrack struct {
	MediaID      string `json:"id"`
	LanguageCode string `json:"language_code"`
	DisplayName  string `json:"display_name"`
}

// merge sets in md every member of u that is set.
func (md *MediaMetadata) merge(u *MediaMetadata) {
	if u.AltText != nil {
		md.AltText = u.AltText
	}
	if u.SensitiveMediaWarning != nil {
		md.SensitiveMediaWarning = u.SensitiveMediaWarning
	}
	if u.AllowDownloadStatus != nil {
		md.AllowDownloadStatus = u.AllowDownloadStatus
	}
	if u.AudiencePolicy != nil {
		md.AudiencePolicy = u.AudiencePolicy
	}
	if u.GeoRestrictions != nil {
		md.GeoRestrictions = u.GeoRestrictions
	}
	if u.ContentExpiration != nil {
		md.ContentExpiration = u.ContentExpiration
	}
	if u.FoundMediaOrigin != nil {
		md.FoundMediaOrigin = u.FoundMediaOrigin
	}
	if len(u.Other) > 0 {
		if md.Other == nil {
			md.Other = map[string]json.RawMessage{}
		}
		maps.Copy(md.Other, u.Other)
	}
}

// clone returns a deep enough copy for a view: the pointed-to structs are
// never modified after a merge, only replaced.
func (md *MediaMetadata) clone() *MediaMetadata {
	if md == nil {
		return nil
	}
	c := *md
	c.Other = maps.Clone(md.Other)
	return &c
}

// associated is md as X's associated_metadata object: the typed members and
// the loose ones side by side.
func (md *MediaMetadata) associated() map[string]any {
	out := map[string]any{}
	if md == nil {
		return out
	}
	for k, v := range md.Other {
		out[k] = v
	}
	b, _ := json.Marshal(struct {
		*MediaMetadata
		Other struct{} `json:"other,omitzero"`
	}{MediaMetadata: md})
	var typed map[string]json.RawMessage
	_ = json.Unmarshal(b, &typed)
	for k, v := range typed {
		out[k] = v
	}
	return out
}

// Why a metadata or subtitles call on a media is refused.
const (
	errNotOwner       errKind = iota + 100 // media of another user
	errNotReady                            // not finalized, or processing not finished
	errMediaFailed                         // processing failed
	errNotVideo                            // subtitles target is not tweet_video/amplify_video, or its category differs
	errNotSubtitles                        // subtitles media is not of category subtitles
	errNoTrack                             // delete: no subtitles in that language
	errAltTextNoVideo                      // v1.1: alt text on a video (images and GIFs only)
)

// metaMessage is the text of the errors above.
func metaMessage(k errKind) string {
	switch k {
	case errNotOwner:
		return "Forbidden"
	case errNotReady:
		return "BadRequest: Media is not ready: processing has not succeeded."
	case errMediaFailed:
		return "BadRequest: Media processing failed."
	case errNotVideo:
		return "BadRequest: Subtitles can only be added to TweetVideo or AmplifyVideo media of that category."
	case errNotSubtitles:
		return "BadRequest: The subtitles media is not a subtitles upload."
	case errNoTrack:
		return "BadRequest: Not found"
	case errAltTextNoVideo:
		return "Alt text is only supported for images and GIFs."
	}
	return ""
}

// usableLocked reports why m cannot take metadata or subtitles yet: it
// must be finalized and, when processed, have succeeded.
func (st *store) usableLocked(m *media) *opError {
	if m.state != stateFinalized {
		return opErr(errNotReady)
	}
	v := st.viewLocked(m, st.now())
	switch {
	case v.proc == nil || v.proc.State == "succeeded":
		return nil
	case v.proc.State == "failed":
		return opErr(errMediaFailed)
	}
	return opErr(errNotReady)
}

// owned returns m with its lock held when it exists and belongs to
// user.
func (st *store) owned(id, user string) (*media, *opError) {
	m, oerr := st.lock(id)
	if oerr != nil {
		return nil, oerr
	}
	if m.owner != user {
		m.mu.Unlock()
		return nil, opErr(errNotOwner)
	}
	return m, nil
}

// setMetadata applies md to media id on behalf of user.
func (st *store) setMetadata(id, user string, md *MediaMetadata, v11 bool) (view, *opError) {
	m, oerr := st.owned(id, user)
	if oerr != nil {
		return view{}, oerr
	}
	defer m.mu.Unlock()
	if oerr := st.usableLocked(m); oerr != nil {
		return view{}, oerr
	}
	if v11 && md.AltText != nil && isVideo(m.mediaType) {
		return view{}, opErr(errAltTextNoVideo)
	}
	if m.meta == nil {
		m.meta = &MediaMetadata{}
	}
	m.meta.merge(md)
	m.metaCalls++
	return st.viewLocked(m, st.now()), nil
}

// subtitleCategories maps X's subtitles media_category to the upload
// category of the video.
var subtitleCategories = map[string]string{"TweetVideo": "tweet_video", "AmplifyVideo": "amplify_video"}

// attachSubtitles attaches tracks to video id (media_category cat) on
// behalf of user; every track's media must be the user's finalized
// subtitles upload. A track in a language already attached replaces it.
func (st *store) attachSubtitles(id, cat, user string, tracks []SubtitleTrack) (view, *opError) {
	for _, t := range tracks {
		if t.MediaID == id {
			return view{}, opErr(errNotSubtitles)
		}
		sm, oerr := st.owned(t.MediaID, user)
		if oerr != nil {
			return view{}, oerr
		}
		bad := sm.category != "subtitles"
		if !bad {
			oerr = st.usableLocked(sm)
		}
		sm.mu.Unlock()
		switch {
		case bad:
			return view{}, opErr(errNotSubtitles)
		case oerr != nil:
			return view{}, oerr
		}
	}
	m, oerr := st.owned(id, user)
	if oerr != nil {
		return view{}, oerr
	}
	defer m.mu.Unlock()
	if subtitleCategories[cat] == "" || m.category != subtitleCategories[cat] {
		return view{}, opErr(errNotVideo)
	}
	if oerr := st.usableLocked(m); oerr != nil {
		return view{}, oerr
	}
	if m.subs == nil {
		m.subs = map[string]SubtitleTrack{}
	}
	for _, t := range tracks {
		m.subs[t.LanguageCode] = t
	}
	m.subCreates++
	return st.viewLocked(m, st.now()), nil
}

// detachSubtitles removes the tracks in langs from video id.
func (st *store) detachSubtitles(id, cat, user string, langs []string) (view, *opError) {
	m, oerr := st.owned(id, user)
	if oerr != nil {
		return view{}, oerr
	}
	defer m.mu.Unlock()
	if subtitleCategories[cat] == "" || m.category != subtitleCategories[cat] {
		return view{}, opErr(errNotVideo)
	}
	for _, l := range langs {
		if _, ok := m.subs[l]; !ok {
			return view{}, opErr(errNoTrack)
		}
	}
	for _, l := range langs {
		delete(m.subs, l)
	}
	m.subDeletes++
	return st.viewLocked(m, st.now()), nil
}

// sortedTracks returns the subtitles sorted by language code.
func sortedTracks(subs map[string]SubtitleTrack) []SubtitleTrack {
	if len(subs) == 0 {
		return nil
	}
	out := slices.Collect(maps.Values(subs))
	slices.SortFunc(out, func(a, b SubtitleTrack) int {
		switch {
		case a.LanguageCode < b.LanguageCode:
			return -1
		case a.LanguageCode > b.LanguageCode:
			return 1
		}
		return 0
	})
	return out
}
