package xfake

import (
	"net/http"
	"slices"
	"strings"
)

// mediaFields are the values media.fields takes (OpenAPI MediaFieldsParameter).
var mediaFields = []string{"alt_text", "duration_ms", "height", "media_key", "non_public_metrics",
	"organic_metrics", "preview_image_url", "promoted_metrics", "public_metrics", "type", "url",
	"variants", "width"}

// lookupMedia is one media of GET /2/media/{media_key}: media_key and type
// always, the rest as media.fields asks and as the emulator knows them.
type lookupMedia struct {
	MediaKey        string    `json:"media_key"`
	Type            string    `json:"type"`
	Width           int       `json:"width,omitempty"`
	Height          int       `json:"height,omitempty"`
	AltText         string    `json:"alt_text,omitempty"`
	PreviewImageURL string    `json:"preview_image_url,omitempty"`
	Variants        []variant `json:"variants,omitempty"`
}

type variant struct {
	ContentType string `json:"content_type"`
	URL         string `json:"url"`
}

// lookupType is the v2 media type of a view: photo, video or animated_gif;
// "" for media the lookup does not describe (subtitles, 3D models).
func (v view) lookupType() string {
	switch {
	case isVideo(v.mediaType):
		return "video"
	case v.mediaType == "image/gif" && (v.category == "tweet_gif" || v.category == "dm_gif"):
		return "animated_gif"
	case isImageType(v.mediaType):
		return "photo"
	}
	return ""
}

// v2Lookup serves GET /2/media/{media_key}?media.fields=…: 200
// {"data":{…}}, or, for a key that is unknown, expired or another user's,
// 200 {"errors":[resource-not-found]} as X's lookups answer. The emulator
// knows width and height of PNG and GIF images only, and no duration; for
// video and GIFs, variants and preview_image_url point at the emulator's
// own host under /_xfake/ (placeholders: nothing is served there).
func (s *Server) v2Lookup(x *exchange) *response {
	if resp := x.limit(keyLookup); resp != nil {
		return resp
	}
	key := x.r.PathValue("media_key")
	if !mediaKeyPattern.MatchString(key) {
		return invalidRequest(msgPattern("media_key", mediaKeyPattern.String()))
	}
	var fields []string
	if q := x.r.URL.Query()["media.fields"]; len(q) > 0 {
		for _, f := range strings.Split(strings.Join(q, ","), ",") {
			if !slices.Contains(mediaFields, f) {
				return invalidRequest("The `media.fields` query parameter value [" + truncateEcho(f) +
					"] is not one of [" + strings.Join(mediaFields, ",") + "]")
			}
			fields = append(fields, f)
		}
	}
	id := key[strings.IndexByte(key, '_')+1:]
	v, oerr := s.store.snapshot(id)
	if oerr != nil || v.key != key || v.owner != x.id.user || v.lookupType() == "" {
		return lookupNotFound(key)
	}
	out := lookupMedia{MediaKey: v.key, Type: v.lookupType()}
	want := func(f string) bool { return slices.Contains(fields, f) }
	if want("width") {
		out.Width = v.width
	}
	if want("height") {
		out.Height = v.height
	}
	if want("alt_text") && v.meta != nil && v.meta.AltText != nil {
		out.AltText = v.meta.AltText.Text
	}
	ready := v.state == stateFinalized && (v.proc == nil || v.proc.State == "succeeded")
	base := "http://" + x.r.Host + "/_xfake/media/" + v.id
	if out.Type != "photo" && ready {
		if want("preview_image_url") {
			out.PreviewImageURL = base + "/preview.jpg"
		}
		if want("variants") {
			out.Variants = []variant{{ContentType: "video/mp4", URL: base + "/video.mp4"}}
		}
	}
	return jsonResponse(http.StatusOK, ctJSON, dataWrap{out})
}

type lookupError struct {
	Value        string `json:"value"`
	Detail       string `json:"detail"`
	Title        string `json:"title"`
	ResourceType string `json:"resource_type"`
	Parameter    string `json:"parameter"`
	ResourceID   string `json:"resource_id"`
	Type         string `json:"type"`
}

// lookupNotFound is X's answer to a lookup of something that is not there:
// 200 with errors and no data.
func lookupNotFound(key string) *response {
	return jsonResponse(http.StatusOK, ctJSON, struct {
		Errors []lookupError `json:"errors"`
	}{[]lookupError{{Value: key, Detail: "Could not find media with media_keys: [" + key + "].",
		Title: "Not Found Error", ResourceType: "media", Parameter: "media_key", ResourceID: key,
		Type: "https://api.twitter.com/2/problems/resource-not-found"}}})
}

// truncateEcho bounds what an error repeats of a query value.
func truncateEcho(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
