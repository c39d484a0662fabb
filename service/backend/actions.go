package backend

import (
	"context"
	"time"
)

// MediaActions is what mediagw needs from X for media that has been
// uploaded: its metadata, its subtitles and its lookup. Errors whose
// outcome is open (X may have applied the call) have a method
// OutcomeUnknown() bool that reports true.
type MediaActions interface {
	// CheckMetadata validates m for the backend's dialect without calling X.
	CheckMetadata(m Metadata) error
	// SetMetadata sets m on mediaID.
	SetMetadata(ctx context.Context, auth Auth, mediaID string, m Metadata) error
	// AttachSubtitles attaches s to the video videoID, uploaded in
	// videoCategory (X's wire name).
	AttachSubtitles(ctx context.Context, auth Auth, videoID, videoCategory string, s Subtitles) error
	// DetachSubtitles removes the video's subtitles in languageCode.
	DetachSubtitles(ctx context.Context, auth Auth, videoID, videoCategory, languageCode string) error
	// LookupMedia asks X for the media with mediaKey. A dialect without a
	// lookup fails with Unimplemented and sends nothing.
	LookupMedia(ctx context.Context, auth Auth, mediaKey string) (MediaDetails, error)
	// CanLookup reports whether the dialect has a media lookup.
	CanLookup() bool
}

// Metadata is X's media metadata; nil fields are not sent.
type Metadata struct {
	AltText       *string
	Sensitive     *SensitiveMediaWarning
	AllowDownload *bool
	// Audience lists creator and X subscriptions (both nil: not sent).
	Audience *Audience
	// Geo lists blacklisted and whitelisted countries (nil: not sent).
	Geo              *Geo
	ExpiresAt        time.Time
	FoundMediaOrigin *FoundMediaOrigin
}

// SensitiveMediaWarning is X's sensitive_media_warning.
type SensitiveMediaWarning struct{ AdultContent, GraphicViolence, Other bool }

// Audience is X's audience_policy.
type Audience struct{ CreatorSubscriptions, XSubscriptions []string }

// Geo is X's geo_restrictions.
type Geo struct{ Blacklisted, Whitelisted []string }

// FoundMediaOrigin is X's found_media_origin.
type FoundMediaOrigin struct{ ID, Provider string }

// Subtitles is one subtitles track: the subtitles upload's media id, its
// language (two upper-case letters) and the name viewers see.
type Subtitles struct{ MediaID, LanguageCode, DisplayName string }

// MediaDetails is X's lookup of one media.
type MediaDetails struct {
	Key             string
	Type            string
	Width, Height   int
	Duration        time.Duration
	AltText         string
	PreviewImageURL string
	Variants        []Variant
}

// Variant is one rendition of a video or GIF.
type Variant struct {
	ContentType string
	URL         string
	BitRate     int64
}
