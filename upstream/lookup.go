package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// lookupFields are the media.fields LookupMedia asks for.
const lookupFields = "type,width,height,duration_ms,alt_text,variants,preview_image_url"

// MediaDetails is X's description of media from GET /2/media/{media_key}.
// Fields X did not send are zero.
type MediaDetails struct {
	// Key is the media key, e.g. "3_1880028106020515840".
	Key string
	// Type is photo, video or animated_gif.
	Type string
	// Width and Height are in pixels.
	Width, Height int
	// Duration is the length of a video (duration_ms).
	Duration time.Duration
	// AltText is the media's alt text.
	AltText string
	// PreviewImageURL is the still shown for a video or GIF.
	PreviewImageURL string
	// Variants are the renditions of a video or GIF.
	Variants []Variant
}

// Variant is one rendition of a video or GIF.
type Variant struct {
	ContentType string
	URL         string
	BitRate     int64 // bits per second; 0 when X gave none
}

type wireLookup struct {
	MediaKey        flexString `json:"media_key"`
	Type            flexString `json:"type"`
	Width           flexInt    `json:"width"`
	Height          flexInt    `json:"height"`
	DurationMS      flexInt    `json:"duration_ms"`
	AltText         flexString `json:"alt_text"`
	PreviewImageURL flexString `json:"preview_image_url"`
	Variants        []struct {
		ContentType flexString `json:"content_type"`
		URL         flexString `json:"url"`
		BitRate     flexInt    `json:"bit_rate"`
	} `json:"variants"`
}

// validMediaKey reports whether k looks like X's media keys: digits, an
// underscore, digits.
func validMediaKey(k string) bool {
	i := 0
	for i < len(k) && k[i] >= '0' && k[i] <= '9' {
		i++
	}
	return i > 0 && i < len(k)-1 && k[i] == '_' && validMediaID(k[i+1:])
}

// LookupMedia asks X for the media with mediaKey (GET /2/media/{media_key}
// with media.fields type, width, height, duration_ms, alt_text, variants
// and preview_image_url), on both v2 dialects. v1.1 has no media lookup:
// the call fails with [ErrUnsupported] and nothing is sent. Media X cannot
// find, which X answers with HTTP 200, a resource-not-found error and no
// data, is an [*APIError] with HTTPStatus 404, the status that answer
// stands for. The lookup is a GET and is retried like STATUS.
func (c *Client) LookupMedia(ctx context.Context, creds Credentials, mediaKey string) (*MediaDetails, error) {
	if c.cfg.Dialect == DialectV1 {
		return nil, kindf(ErrUnsupported, "X's v1.1 API has no media lookup; the v2 and v2-command dialects have one")
	}
	creds, err := c.creds(creds)
	if err != nil {
		return nil, err
	}
	if !validMediaKey(mediaKey) {
		return nil, invalidf("media key %q is not of X's form digits_digits", truncate(mediaKey, 32))
	}
	r := &request{cmd: cmdLookup, method: http.MethodGet, path: "/2/media/" + url.PathEscape(mediaKey),
		segment: -1, mediaID: mediaKey, query: url.Values{"media.fields": {lookupFields}}}
	var body []byte
	if _, _, err := c.call(ctx, creds, r, callOpts{body: &body}); err != nil {
		return nil, err
	}
	var ans struct {
		Data   *wireLookup     `json:"data"`
		Errors json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("X answered LOOKUP with a body that could not be read: %s", snippet(body))
	}
	if ans.Data == nil {
		ae := parseAPIError(http.StatusNotFound, nil, body, now())
		ae.Command, ae.Segment, ae.MediaID = cmdLookup.String(), -1, mediaKey
		scrubAPIError(ae, creds.secrets())
		return nil, ae
	}
	d := ans.Data
	out := &MediaDetails{Key: string(d.MediaKey), Type: string(d.Type), Width: int(d.Width), Height: int(d.Height),
		Duration: time.Duration(d.DurationMS) * time.Millisecond, AltText: string(d.AltText),
		PreviewImageURL: string(d.PreviewImageURL)}
	if out.Key == "" {
		out.Key = mediaKey
	}
	for _, v := range d.Variants {
		out.Variants = append(out.Variants, Variant{ContentType: string(v.ContentType), URL: string(v.URL), BitRate: int64(v.BitRate)})
	}
	return out, nil
}
