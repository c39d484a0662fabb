package main

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/upstream"
)

// xActions connects the upstream adapter's calls after the upload to
// backend.MediaActions; it only converts types (and names the dialect
// in the error of a call the dialect lacks).
type xActions struct {
	xBackend
	dialect string
}

var _ backend.MediaActions = xActions{}

func metadataOf(m backend.Metadata) upstream.Metadata {
	u := upstream.Metadata{AltText: m.AltText, AllowDownload: m.AllowDownload, ExpiresAt: m.ExpiresAt}
	if s := m.Sensitive; s != nil {
		u.Sensitive = &upstream.SensitiveMediaWarning{AdultContent: s.AdultContent, GraphicViolence: s.GraphicViolence, Other: s.Other}
	}
	if a := m.Audience; a != nil {
		u.Audience = &upstream.AudiencePolicy{CreatorSubscriptions: a.CreatorSubscriptions, XSubscriptions: a.XSubscriptions}
	}
	if g := m.Geo; g != nil {
		u.Geo = &upstream.GeoRestrictions{Blacklisted: g.Blacklisted, Whitelisted: g.Whitelisted}
	}
	if f := m.FoundMediaOrigin; f != nil {
		u.FoundMediaOrigin = &upstream.FoundMediaOrigin{ID: f.ID, Provider: f.Provider}
	}
	return u
}

// unsupported names the dialect in ErrUnsupported.
func (x xActions) unsupported(err error, what string) error {
	if errors.Is(err, upstream.ErrUnsupported) {
		return &apierr.Error{Code: codes.Unimplemented, Msg: "X's " + x.dialect + " API (mediagw's dialect) does not support " + what}
	}
	return err
}

func (x xActions) CheckMetadata(m backend.Metadata) error {
	return x.unsupported(x.c.CheckMetadata(metadataOf(m)), "this metadata (alt text and sensitive-media warnings only)")
}

func (x xActions) SetMetadata(ctx context.Context, a backend.Auth, mediaID string, m backend.Metadata) error {
	creds, err := x.creds(a)
	if err != nil {
		return err
	}
	_, err = x.c.SetMetadata(ctx, creds, mediaID, metadataOf(m))
	return x.unsupported(err, "this metadata")
}

func (x xActions) AttachSubtitles(ctx context.Context, a backend.Auth, videoID, category string, s backend.Subtitles) error {
	creds, err := x.creds(a)
	if err != nil {
		return err
	}
	_, err = x.c.AttachSubtitles(ctx, creds, videoID, category, upstream.Subtitles{MediaID: s.MediaID, LanguageCode: s.LanguageCode, DisplayName: s.DisplayName})
	return x.unsupported(err, "subtitles")
}

func (x xActions) DetachSubtitles(ctx context.Context, a backend.Auth, videoID, category, lang string) error {
	creds, err := x.creds(a)
	if err != nil {
		return err
	}
	return x.unsupported(x.c.DetachSubtitles(ctx, creds, videoID, category, lang), "subtitles")
}

func (x xActions) LookupMedia(ctx context.Context, a backend.Auth, key string) (backend.MediaDetails, error) {
	creds, err := x.creds(a)
	if err != nil {
		return backend.MediaDetails{}, err
	}
	d, err := x.c.LookupMedia(ctx, creds, key)
	if err != nil {
		return backend.MediaDetails{}, x.unsupported(err, "a media lookup")
	}
	out := backend.MediaDetails{Key: d.Key, Type: d.Type, Width: d.Width, Height: d.Height, Duration: d.Duration,
		AltText: d.AltText, PreviewImageURL: d.PreviewImageURL}
	for _, v := range d.Variants {
		out.Variants = append(out.Variants, backend.Variant{ContentType: v.ContentType, URL: v.URL, BitRate: v.BitRate})
	}
	return out, nil
}

func (x xActions) CanLookup() bool { return x.dialect != string(upstream.DialectV1) }
