package mediaops

import (
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/ledger"
)

// toBackend converts the contract's metadata to the backend's.
func toBackend(m *mediagwv1.MediaMetadata) backend.Metadata {
	var b backend.Metadata
	if m == nil {
		return b
	}
	b.AltText = m.AltText
	b.AllowDownload = m.AllowDownload
	if s := m.GetSensitiveMediaWarning(); s != nil {
		b.Sensitive = &backend.SensitiveMediaWarning{AdultContent: s.GetAdultContent(), GraphicViolence: s.GetGraphicViolence(), Other: s.GetOther()}
	}
	if a := m.GetAudiencePolicy(); a != nil {
		b.Audience = &backend.Audience{CreatorSubscriptions: a.GetCreatorSubscriptions(), XSubscriptions: a.GetXSubscriptions()}
	}
	if g := m.GetGeoRestrictions(); g != nil {
		b.Geo = &backend.Geo{Blacklisted: g.GetBlacklisted(), Whitelisted: g.GetWhitelisted()}
	}
	if t := m.GetExpiresAt(); t != nil {
		b.ExpiresAt = t.AsTime()
	}
	if f := m.GetFoundMediaOrigin(); f != nil {
		b.FoundMediaOrigin = &backend.FoundMediaOrigin{ID: f.GetId(), Provider: f.GetProvider()}
	}
	return b
}

// isEmpty reports whether m sets nothing.
func isEmpty(m *mediagwv1.MediaMetadata) bool {
	b := toBackend(m)
	return b.AltText == nil && b.Sensitive == nil && b.AllowDownload == nil && b.Audience == nil &&
		b.Geo == nil && b.ExpiresAt.IsZero() && b.FoundMediaOrigin == nil
}

// metadataOf reads the metadata an entry holds.
func metadataOf(a *ledger.Actions) (*mediagwv1.MediaMetadata, error) {
	m := &mediagwv1.MediaMetadata{}
	if err := protojson.Unmarshal(a.Metadata, m); err != nil {
		return nil, err
	}
	return m, nil
}

// Proto is the caller's view of an entry's actions; nil when there are none.
func Proto(a *ledger.Actions) *mediagwv1.MediaActions {
	if a == nil || a.Metadata == nil && len(a.Subtitles) == 0 {
		return nil
	}
	out := &mediagwv1.MediaActions{}
	if a.Metadata != nil {
		out.Metadata = stateProto(a.MetaSt)
	}
	for _, s := range a.Subtitles {
		out.Subtitles = append(out.Subtitles, &mediagwv1.SubtitlesAction{
			Track:  &mediagwv1.SubtitlesTrack{SubtitlesMediaId: s.MediaID, LanguageCode: s.LanguageCode, DisplayName: s.DisplayName},
			Status: stateProto(s.State),
		})
	}
	return out
}

func stateProto(s ledger.ActionState) *mediagwv1.ActionStatus {
	st := &mediagwv1.ActionStatus{State: mediagwv1.ActionState_ACTION_STATE_PENDING}
	switch s.Step {
	case ledger.StepApplied:
		st.State = mediagwv1.ActionState_ACTION_STATE_APPLIED
	case ledger.StepFailed:
		st.State = mediagwv1.ActionState_ACTION_STATE_FAILED
	}
	if s.Error != nil {
		st.Error = &mediagwv1.UploadError{Code: s.Error.Code, Message: s.Error.Message}
	}
	return st
}

// failure is the ledger's record of why a call failed.
func failure(err error) *ledger.Error {
	st := status.Convert(apierr.ToStatus(err))
	return &ledger.Error{Code: apierr.CodeName(st.Code()), Message: st.Message()}
}

// detailsProto converts X's lookup.
func detailsProto(mediaID string, d backend.MediaDetails) *mediagwv1.MediaInfo {
	out := &mediagwv1.MediaInfo{
		MediaId: mediaID, MediaKey: d.Key, Type: d.Type, Width: int32(d.Width), Height: int32(d.Height),
		DurationMs: d.Duration.Milliseconds(), AltText: d.AltText, PreviewImageUrl: d.PreviewImageURL,
	}
	for _, v := range d.Variants {
		out.Variants = append(out.Variants, &mediagwv1.MediaVariant{ContentType: v.ContentType, Url: v.URL, BitRate: v.BitRate})
	}
	return out
}
