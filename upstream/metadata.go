package upstream

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf8"
)

// MaxAltTextChars is X's limit on alt text: 1,000 characters, counted here
// as Unicode code points (not bytes). The v1.1 page once said 420; its
// current text and v2's OpenAPI say 1,000.
const MaxAltTextChars = 1000

// AudienceAny is the only audience_policy value X documents.
const AudienceAny = "Any"

// Metadata is what X lets the uploader attach to media after the upload
// (POST /2/media/metadata; v1.1 media/metadata/create.json). A nil or zero
// field is not sent, so a call changes only what it sets.
//
// X's v2 body has further members that this package does not send:
// preview_image (its media_key is an untyped object in X's OpenAPI, shown
// only by an example), and domain_restrictions, management_info,
// shared_info, sticker_info and upload_source, which are not a backend's to
// set.
type Metadata struct {
	// AltText describes the media for people who cannot see it: at most
	// [MaxAltTextChars] characters of valid UTF-8.
	AltText *string
	// Sensitive is sensitive_media_warning: which warnings X shows before
	// the media.
	Sensitive *SensitiveMediaWarning
	// AllowDownload is allow_download_status.allow_download (v2 only).
	AllowDownload *bool
	// Audience is audience_policy (v2 only).
	Audience *AudiencePolicy
	// Geo is geo_restrictions (v2 only).
	Geo *GeoRestrictions
	// ExpiresAt is content_expiration.timestamp_sec, whole seconds (v2
	// only); zero is not sent.
	ExpiresAt time.Time
	// FoundMediaOrigin is found_media_origin (v2 only): the provider's id
	// of media found through a provider, e.g. a GIF search.
	FoundMediaOrigin *FoundMediaOrigin
}

// SensitiveMediaWarning is sensitive_media_warning. v2 sends the three
// booleans; v1.1 the names of those that are true.
type SensitiveMediaWarning struct {
	AdultContent    bool
	GraphicViolence bool
	Other           bool
}

// AudiencePolicy is audience_policy: lists whose only documented item is
// [AudienceAny].
type AudiencePolicy struct {
	CreatorSubscriptions []string
	XSubscriptions       []string
}

// GeoRestrictions is geo_restrictions: two-letter country codes (X's
// example is lower case, "us").
type GeoRestrictions struct {
	Blacklisted []string
	Whitelisted []string
}

// FoundMediaOrigin is found_media_origin.
type FoundMediaOrigin struct {
	ID       string // required
	Provider string // e.g. "giphy"; optional
}

// MetadataResult is X's answer to a metadata call.
type MetadataResult struct {
	// MediaID is the media the metadata was set on.
	MediaID string
	// Echoed is X's associated_metadata (v2): the media's metadata as X
	// holds it after the call. Nil on v1.1, whose answer is empty.
	Echoed *Metadata
}

// Validate checks m against X's documented rules for dialect d, sending
// nothing: at least one field set, alt text within [MaxAltTextChars]
// characters of valid UTF-8, audience items [AudienceAny], country codes of
// two letters, found_media_origin with an id, and on v1.1 only AltText and
// Sensitive (v1.1 takes nothing else). The error wraps [ErrInvalidParams],
// or [ErrUnsupported] for a field the dialect lacks.
func (m Metadata) Validate(d Dialect) error {
	if m.AltText == nil && m.Sensitive == nil && m.AllowDownload == nil && m.Audience == nil &&
		m.Geo == nil && m.ExpiresAt.IsZero() && m.FoundMediaOrigin == nil {
		return invalidf("the metadata sets nothing")
	}
	if m.AltText != nil {
		if !utf8.ValidString(*m.AltText) {
			return invalidf("the alt text is not valid UTF-8")
		}
		if n := utf8.RuneCountInString(*m.AltText); n > MaxAltTextChars {
			return invalidf("the alt text has %d characters, X takes at most %d", n, MaxAltTextChars)
		}
	}
	if d == DialectV1 {
		for _, f := range []struct {
			set  bool
			name string
		}{{m.AllowDownload != nil, "allow-download"}, {m.Audience != nil, "audience policy"},
			{m.Geo != nil, "geo restrictions"}, {!m.ExpiresAt.IsZero(), "content expiration"},
			{m.FoundMediaOrigin != nil, "found-media origin"}} {
			if f.set {
				return kindf(ErrUnsupported, "X's v1.1 metadata call takes only alt text and sensitive-media warnings, not %s", f.name)
			}
		}
	}
	if a := m.Audience; a != nil {
		for _, v := range append(append([]string(nil), a.CreatorSubscriptions...), a.XSubscriptions...) {
			if v != AudienceAny {
				return invalidf("audience policy item %q is not %q, the only one X documents", truncate(v, 32), AudienceAny)
			}
		}
	}
	if g := m.Geo; g != nil {
		for _, cc := range append(append([]string(nil), g.Blacklisted...), g.Whitelisted...) {
			if !countryCode(cc) {
				return invalidf("country code %q is not two letters", truncate(cc, 32))
			}
		}
	}
	if !m.ExpiresAt.IsZero() && m.ExpiresAt.Unix() < 1 {
		return invalidf("the content expiration is before 1970")
	}
	if o := m.FoundMediaOrigin; o != nil && (o.ID == "" || !utf8.ValidString(o.ID+o.Provider)) {
		return invalidf("the found-media origin needs an id of valid UTF-8")
	}
	return nil
}

func countryCode(s string) bool {
	if len(s) != 2 {
		return false
	}
	for i := 0; i < 2; i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// CheckMetadata validates m for the Client's dialect without calling X
// (see [Metadata.Validate]); a caller can refuse bad metadata before INIT.
func (c *Client) CheckMetadata(m Metadata) error { return m.Validate(c.cfg.Dialect) }

// Wire shapes of the metadata calls.

type wireAltText struct {
	Text string `json:"text"`
}

type wireSensitive struct {
	AdultContent    bool `json:"adult_content"`
	GraphicViolence bool `json:"graphic_violence"`
	Other           bool `json:"other"`
}

type wireAllowDownload struct {
	AllowDownload bool `json:"allow_download"`
}

type wireAudience struct {
	CreatorSubscriptions []string `json:"creator_subscriptions,omitempty"`
	XSubscriptions       []string `json:"x_subscriptions,omitempty"`
}

type wireGeo struct {
	Blacklisted []string `json:"blacklisted_country_codes,omitempty"`
	Whitelisted []string `json:"whitelisted_country_codes,omitempty"`
}

type wireExpiration struct {
	TimestampSec int64 `json:"timestamp_sec"`
}

type wireOrigin struct {
	ID       flexString `json:"id"`
	Provider flexString `json:"provider,omitempty"`
}

// wireMetadata is v2's metadata object (and associated_metadata).
type wireMetadata struct {
	AltText       *wireAltText       `json:"alt_text,omitempty"`
	Sensitive     *wireSensitive     `json:"sensitive_media_warning,omitempty"`
	AllowDownload *wireAllowDownload `json:"allow_download_status,omitempty"`
	Audience      *wireAudience      `json:"audience_policy,omitempty"`
	Geo           *wireGeo           `json:"geo_restrictions,omitempty"`
	Expiration    *wireExpiration    `json:"content_expiration,omitempty"`
	Origin        *wireOrigin        `json:"found_media_origin,omitempty"`
}

func toWire(m Metadata) wireMetadata {
	var w wireMetadata
	if m.AltText != nil {
		w.AltText = &wireAltText{Text: *m.AltText}
	}
	if s := m.Sensitive; s != nil {
		w.Sensitive = &wireSensitive{AdultContent: s.AdultContent, GraphicViolence: s.GraphicViolence, Other: s.Other}
	}
	if m.AllowDownload != nil {
		w.AllowDownload = &wireAllowDownload{AllowDownload: *m.AllowDownload}
	}
	if a := m.Audience; a != nil {
		w.Audience = &wireAudience{CreatorSubscriptions: a.CreatorSubscriptions, XSubscriptions: a.XSubscriptions}
	}
	if g := m.Geo; g != nil {
		w.Geo = &wireGeo{Blacklisted: g.Blacklisted, Whitelisted: g.Whitelisted}
	}
	if !m.ExpiresAt.IsZero() {
		w.Expiration = &wireExpiration{TimestampSec: m.ExpiresAt.Unix()}
	}
	if o := m.FoundMediaOrigin; o != nil {
		w.Origin = &wireOrigin{ID: flexString(o.ID), Provider: flexString(o.Provider)}
	}
	return w
}

func fromWire(w wireMetadata) *Metadata {
	m := &Metadata{}
	if w.AltText != nil {
		t := w.AltText.Text
		m.AltText = &t
	}
	if s := w.Sensitive; s != nil {
		m.Sensitive = &SensitiveMediaWarning{AdultContent: s.AdultContent, GraphicViolence: s.GraphicViolence, Other: s.Other}
	}
	if w.AllowDownload != nil {
		b := w.AllowDownload.AllowDownload
		m.AllowDownload = &b
	}
	if a := w.Audience; a != nil {
		m.Audience = &AudiencePolicy{CreatorSubscriptions: a.CreatorSubscriptions, XSubscriptions: a.XSubscriptions}
	}
	if g := w.Geo; g != nil {
		m.Geo = &GeoRestrictions{Blacklisted: g.Blacklisted, Whitelisted: g.Whitelisted}
	}
	if e := w.Expiration; e != nil && e.TimestampSec > 0 {
		m.ExpiresAt = time.Unix(e.TimestampSec, 0)
	}
	if o := w.Origin; o != nil {
		m.FoundMediaOrigin = &FoundMediaOrigin{ID: string(o.ID), Provider: string(o.Provider)}
	}
	return m
}

// metadataReq builds the metadata call of the Client's dialect.
func (c *Client) metadataReq(id string, m Metadata) (*request, error) {
	var body any
	path := "/2/media/metadata"
	if c.cfg.Dialect == DialectV1 {
		path = "/1.1/media/metadata/create.json"
		v := struct {
			MediaID   string       `json:"media_id"`
			AltText   *wireAltText `json:"alt_text,omitempty"`
			Sensitive *[]string    `json:"sensitive_media_warning,omitempty"`
		}{MediaID: id}
		if m.AltText != nil {
			v.AltText = &wireAltText{Text: *m.AltText}
		}
		if s := m.Sensitive; s != nil {
			names := []string{}
			for _, w := range []struct {
				on   bool
				name string
			}{{s.AdultContent, "adult_content"}, {s.GraphicViolence, "graphic_violence"}, {s.Other, "other"}} {
				if w.on {
					names = append(names, w.name)
				}
			}
			v.Sensitive = &names
		}
		body = v
	} else {
		body = struct {
			ID       string       `json:"id"`
			Metadata wireMetadata `json:"metadata"`
		}{id, toWire(m)}
	}
	return jsonRequest(cmdMetadata, http.MethodPost, path, id, body)
}

// jsonRequest is a call with a JSON body. OAuth 1.0a signs it without
// the body (RFC 5849 §3.4.1.3: only urlencoded bodies are signed), as X
// expects.
func jsonRequest(cmd command, method, path, id string, body any) (*request, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, invalidf("encoding %s: %v", cmd, err)
	}
	r := &request{cmd: cmd, method: method, path: path, segment: -1, mediaID: id}
	r.body, r.size, r.contentType = bytesBody(b, "application/json")
	return r, nil
}

// SetMetadata sets m on the media mediaID (POST /2/media/metadata on both
// v2 dialects, media/metadata/create.json on v1.1). creds nil means
// Config.Credentials. m is validated first ([Metadata.Validate]); nothing
// is sent when it fails.
//
// X does not document the call as idempotent, so it is made once: it is
// retried only when it cannot have been applied (the connection was
// refused or the request never written whole, X answered 429 or refused
// the token), and an answer that leaves the outcome open (408, 5xx, a
// reset or a timeout after the request was sent) fails the call with an
// error whose MaybeApplied is set (see "Calls after the upload" in the
// package documentation).
func (c *Client) SetMetadata(ctx context.Context, creds Credentials, mediaID string, m Metadata) (*MetadataResult, error) {
	creds, err := c.creds(creds)
	if err != nil {
		return nil, err
	}
	if !validMediaID(mediaID) {
		return nil, invalidf("media id %q is not numeric", truncate(mediaID, 32))
	}
	if err := m.Validate(c.cfg.Dialect); err != nil {
		return nil, err
	}
	r, err := c.metadataReq(mediaID, m)
	if err != nil {
		return nil, err
	}
	var body []byte
	if _, _, err := c.call(ctx, creds, r, callOpts{once: true, body: &body}); err != nil {
		return nil, err
	}
	out := &MetadataResult{MediaID: mediaID}
	if c.cfg.Dialect == DialectV1 || len(body) == 0 {
		return out, nil
	}
	var ans struct {
		Data *struct {
			ID         flexID        `json:"id"`
			Associated *wireMetadata `json:"associated_metadata"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return out, nil // applied; only the echo could not be read
	}
	if d := ans.Data; d != nil {
		if d.ID != "" {
			out.MediaID = string(d.ID)
		}
		if d.Associated != nil {
			out.Echoed = fromWire(*d.Associated)
		}
	}
	return out, nil
}
