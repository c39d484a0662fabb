package upstream

import (
	"context"
	"encoding/json"
	"net/http"
	"unicode/utf8"
)

// Subtitles is one subtitles track: an upload of category "subtitles"
// (SRT or WebVTT) attached to a video in one language.
type Subtitles struct {
	// MediaID is the id of the subtitles upload.
	MediaID string
	// LanguageCode is the track's language as X wants it: two upper-case
	// letters (^[A-Z]{2}$), e.g. "EN".
	LanguageCode string
	// DisplayName is what players show, e.g. "English"; optional.
	DisplayName string
}

// SubtitlesResult is X's answer to AttachSubtitles.
type SubtitlesResult struct {
	// VideoID is the video the track was attached to.
	VideoID string
	// Tracks are the video's subtitles as X answered them (v2
	// associated_subtitles); nil on v1.1, whose answer is empty.
	Tracks []Subtitles
}

// subtitlesCategory maps a video's upload category to the media_category
// X's subtitles calls take: tweet_video → TweetVideo, amplify_video →
// AmplifyVideo (the CamelCase forms are taken as they are).
func subtitlesCategory(videoCategory string) (string, error) {
	switch videoCategory {
	case "tweet_video", "TweetVideo":
		return "TweetVideo", nil
	case "amplify_video", "AmplifyVideo":
		return "AmplifyVideo", nil
	}
	return "", invalidf("subtitles attach only to tweet_video or amplify_video media, not %q", truncate(videoCategory, 32))
}

// ValidLanguageCode reports whether code is a language code X's subtitles
// calls take: two upper-case ASCII letters.
func ValidLanguageCode(code string) bool {
	return len(code) == 2 && code[0] >= 'A' && code[0] <= 'Z' && code[1] >= 'A' && code[1] <= 'Z'
}

func checkLanguage(code string) error {
	if !ValidLanguageCode(code) {
		return invalidf("language code %q is not two upper-case letters (X requires ^[A-Z]{2}$, e.g. EN)", truncate(code, 32))
	}
	return nil
}

// CheckSubtitles validates an AttachSubtitles call without calling X:
// numeric ids, a video category that takes subtitles, the language code,
// valid UTF-8 in the display name, and two different media.
func CheckSubtitles(videoID, videoCategory string, s Subtitles) error {
	if !validMediaID(videoID) {
		return invalidf("video media id %q is not numeric", truncate(videoID, 32))
	}
	if !validMediaID(s.MediaID) {
		return invalidf("subtitles media id %q is not numeric", truncate(s.MediaID, 32))
	}
	if s.MediaID == videoID {
		return invalidf("the subtitles media and the video are the same media")
	}
	if _, err := subtitlesCategory(videoCategory); err != nil {
		return err
	}
	if !utf8.ValidString(s.DisplayName) {
		return invalidf("the subtitles display name is not valid UTF-8")
	}
	return checkLanguage(s.LanguageCode)
}

type wireTrack struct {
	ID           flexID     `json:"id,omitempty"`
	MediaID      flexID     `json:"media_id,omitempty"`
	LanguageCode flexString `json:"language_code"`
	DisplayName  flexString `json:"display_name,omitempty"`
}

// AttachSubtitles attaches the subtitles track s to the video videoID,
// whose upload category videoCategory (tweet_video or amplify_video) gives
// X's media_category: POST /2/media/subtitles on both v2 dialects,
// media/subtitles/create.json on v1.1. X refuses the call until the video
// has been processed. Like [Client.SetMetadata], the call is made once
// and not retried once it may have been applied.
func (c *Client) AttachSubtitles(ctx context.Context, creds Credentials, videoID, videoCategory string, s Subtitles) (*SubtitlesResult, error) {
	creds, err := c.creds(creds)
	if err != nil {
		return nil, err
	}
	if err := CheckSubtitles(videoID, videoCategory, s); err != nil {
		return nil, err
	}
	cat, _ := subtitlesCategory(videoCategory)
	var body any
	path := "/2/media/subtitles"
	if c.cfg.Dialect == DialectV1 {
		path = "/1.1/media/subtitles/create.json"
		body = v11Subtitles(videoID, cat, wireTrack{MediaID: flexID(s.MediaID),
			LanguageCode: flexString(s.LanguageCode), DisplayName: flexString(s.DisplayName)})
	} else {
		body = struct {
			ID        string    `json:"id"`
			Category  string    `json:"media_category"`
			Subtitles wireTrack `json:"subtitles"`
		}{videoID, cat, wireTrack{ID: flexID(s.MediaID), LanguageCode: flexString(s.LanguageCode),
			DisplayName: flexString(s.DisplayName)}}
	}
	r, err := jsonRequest(cmdSubtitlesCreate, http.MethodPost, path, videoID, body)
	if err != nil {
		return nil, err
	}
	var ans []byte
	if _, _, err := c.call(ctx, creds, r, callOpts{once: true, body: &ans}); err != nil {
		return nil, err
	}
	out := &SubtitlesResult{VideoID: videoID}
	if c.cfg.Dialect == DialectV1 || len(ans) == 0 {
		return out, nil
	}
	var w struct {
		Data *struct {
			ID     flexID      `json:"id"`
			Tracks []wireTrack `json:"associated_subtitles"`
		} `json:"data"`
	}
	if json.Unmarshal(ans, &w) == nil && w.Data != nil {
		if w.Data.ID != "" {
			out.VideoID = string(w.Data.ID)
		}
		for _, t := range w.Data.Tracks {
			out.Tracks = append(out.Tracks, Subtitles{MediaID: string(firstNonEmpty(t.ID, t.MediaID)),
				LanguageCode: string(t.LanguageCode), DisplayName: string(t.DisplayName)})
		}
	}
	return out, nil
}

// DetachSubtitles removes the video's subtitles in languageCode: DELETE
// /2/media/subtitles (with a JSON body) on both v2 dialects,
// media/subtitles/delete.json on v1.1. Made once, like AttachSubtitles.
func (c *Client) DetachSubtitles(ctx context.Context, creds Credentials, videoID, videoCategory, languageCode string) error {
	creds, err := c.creds(creds)
	if err != nil {
		return err
	}
	if !validMediaID(videoID) {
		return invalidf("video media id %q is not numeric", truncate(videoID, 32))
	}
	cat, err := subtitlesCategory(videoCategory)
	if err != nil {
		return err
	}
	if err := checkLanguage(languageCode); err != nil {
		return err
	}
	var body any
	method, path := http.MethodDelete, "/2/media/subtitles"
	if c.cfg.Dialect == DialectV1 {
		method, path = http.MethodPost, "/1.1/media/subtitles/delete.json"
		body = v11Subtitles(videoID, cat, wireTrack{LanguageCode: flexString(languageCode)})
	} else {
		body = struct {
			ID       string `json:"id"`
			Category string `json:"media_category"`
			Language string `json:"language_code"`
		}{videoID, cat, languageCode}
	}
	r, err := jsonRequest(cmdSubtitlesDelete, method, path, videoID, body)
	if err != nil {
		return err
	}
	var ans []byte
	_, _, err = c.call(ctx, creds, r, callOpts{once: true, body: &ans})
	return err
}

// v11Subtitles is the v1.1 subtitles body: {media_id, media_category,
// subtitle_info:{subtitles:[track]}}.
func v11Subtitles(videoID, cat string, t wireTrack) any {
	type info struct {
		Subtitles []wireTrack `json:"subtitles"`
	}
	return struct {
		MediaID  string `json:"media_id"`
		Category string `json:"media_category"`
		Info     info   `json:"subtitle_info"`
	}{videoID, cat, info{[]wireTrack{t}}}
}
