package mediaops

import (
	"context"
	"strings"

	"google.golang.org/grpc/codes"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
)

// validID checks a media id: X's are decimal.
func validID(field, id string) error {
	if id == "" {
		return apierr.Invalidf("%s is required", field)
	}
	if len(id) > 20 || strings.Trim(id, "0123456789") != "" {
		return apierr.Invalidf("%s %s is not an X media id (decimal digits)", field, apierr.Quote(id))
	}
	return nil
}

// usable refuses a call on processed media that has not SUCCEEDED (0 X
// calls when the relay knows the state; else one STATUS call).
func (o *Ops) usable(ctx context.Context, a backend.Auth, id string, m media, known bool) error {
	if !known || !m.Processed {
		return nil
	}
	st, err := o.cfg.Relay.Get(ctx, a, id)
	if err != nil {
		return err
	}
	switch st.GetState() {
	case mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED:
		return nil
	case mediagwv1.ProcessingState_PROCESSING_STATE_FAILED:
		return &apierr.Error{Code: codes.FailedPrecondition, Reason: "MEDIA_FAILED", Msg: "media " + id + " failed processing at X: it takes no metadata or subtitles"}
	}
	return &apierr.Error{Code: codes.FailedPrecondition, Reason: "MEDIA_PROCESSING", Msg: "media " + id + " is still processing at X: try again once its status is SUCCEEDED"}
}

// SetMetadata sets md on the caller's media id.
func (o *Ops) SetMetadata(ctx context.Context, c backend.Caller, id string, md *mediagwv1.MediaMetadata) (*mediagwv1.SetMetadataResponse, error) {
	if err := validID("media_id", id); err != nil {
		return nil, err
	}
	if md == nil {
		return nil, apierr.Invalidf("metadata is required")
	}
	a, err := o.cfg.Relay.Access(c, id)
	if err != nil {
		return nil, err
	}
	m, known, err := o.mediaOf(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := o.checkMetadata(md, m.Category); err != nil {
		return nil, err
	}
	if err := o.usable(ctx, a, id, m, known); err != nil {
		return nil, err
	}
	if err := o.cfg.X.SetMetadata(ctx, a, id, toBackend(md)); err != nil {
		return nil, err
	}
	return &mediagwv1.SetMetadataResponse{MediaId: id}, nil
}

// video returns the caller's credential for the video id and its
// category, refusing media that takes no subtitles.
func (o *Ops) video(ctx context.Context, c backend.Caller, id string) (backend.Auth, media, error) {
	if err := validID("video_media_id", id); err != nil {
		return backend.Auth{}, media{}, err
	}
	a, err := o.cfg.Relay.Access(c, id)
	if err != nil {
		return backend.Auth{}, media{}, err
	}
	m, known, err := o.mediaOf(ctx, id)
	if err != nil {
		return backend.Auth{}, media{}, err
	}
	if !known {
		return backend.Auth{}, media{}, apierr.NotFoundf("video %s was not uploaded through mediagw by this caller, or has expired", id)
	}
	if !isVideo(m.Category) {
		return backend.Auth{}, media{}, apierr.Invalidf("subtitles attach to videos only (tweet_video or amplify_video); media %s is %s", id, orNone(m.Category))
	}
	return a, m, o.usable(ctx, a, id, m, known)
}

// AttachSubtitles attaches the caller's subtitles upload to its video.
func (o *Ops) AttachSubtitles(ctx context.Context, c backend.Caller, req *mediagwv1.AttachSubtitlesRequest) (*mediagwv1.AttachSubtitlesResponse, error) {
	t := backend.Subtitles{MediaID: req.GetSubtitlesMediaId(), LanguageCode: req.GetLanguageCode(), DisplayName: req.GetDisplayName()}
	if err := validID("subtitles_media_id", t.MediaID); err != nil {
		return nil, err
	}
	if t.MediaID == req.GetVideoMediaId() {
		return nil, apierr.Invalidf("video_media_id and subtitles_media_id are the same media")
	}
	if !validLanguage(t.LanguageCode) {
		return nil, apierr.Invalidf("language_code %s is not a language code as X takes it: two upper-case letters (EN, FR)", apierr.Quote(t.LanguageCode))
	}
	a, m, err := o.video(ctx, c, req.GetVideoMediaId())
	if err != nil {
		return nil, err
	}
	if err := o.checkTrack(ctx, c, t); err != nil {
		return nil, err
	}
	if err := o.cfg.X.AttachSubtitles(ctx, a, req.GetVideoMediaId(), m.Category, t); err != nil {
		return nil, err
	}
	return &mediagwv1.AttachSubtitlesResponse{VideoMediaId: req.GetVideoMediaId()}, nil
}

// DetachSubtitles removes the caller's video's subtitles in one language.
func (o *Ops) DetachSubtitles(ctx context.Context, c backend.Caller, req *mediagwv1.DetachSubtitlesRequest) (*mediagwv1.DetachSubtitlesResponse, error) {
	if !validLanguage(req.GetLanguageCode()) {
		return nil, apierr.Invalidf("language_code %s is not a language code as X takes it: two upper-case letters (EN, FR)", apierr.Quote(req.GetLanguageCode()))
	}
	a, m, err := o.video(ctx, c, req.GetVideoMediaId())
	if err != nil {
		return nil, err
	}
	if err := o.cfg.X.DetachSubtitles(ctx, a, req.GetVideoMediaId(), m.Category, req.GetLanguageCode()); err != nil {
		return nil, err
	}
	return &mediagwv1.DetachSubtitlesResponse{VideoMediaId: req.GetVideoMediaId()}, nil
}

// GetMedia looks the caller's media up at X, by media id or media key (X's
// keys end in the media id: 3_1880028106020515840).
func (o *Ops) GetMedia(ctx context.Context, c backend.Caller, req *mediagwv1.GetMediaRequest) (*mediagwv1.MediaInfo, error) {
	id, key := req.GetMediaId(), req.GetMediaKey()
	if id == "" && key != "" {
		_, after, ok := strings.Cut(key, "_")
		if !ok || validID("media_key", after) != nil {
			return nil, apierr.Invalidf("media_key %s is not an X media key (a digit, _ and the media id)", apierr.Quote(key))
		}
		id = after
	}
	if err := validID("media_id", id); err != nil {
		return nil, err
	}
	if !o.cfg.X.CanLookup() {
		return nil, &apierr.Error{Code: codes.Unimplemented, Msg: "X's " + o.cfg.Dialect + " API (mediagw's dialect) has no media lookup"}
	}
	a, err := o.cfg.Relay.Access(c, id)
	if err != nil {
		return nil, err
	}
	if key == "" {
		m, known, err := o.mediaOf(ctx, id)
		if err != nil {
			return nil, err
		}
		if !known || m.Key == "" {
			return nil, apierr.NotFoundf("mediagw does not know the media key of %s: give media_key", id)
		}
		key = m.Key
	}
	d, err := o.cfg.X.LookupMedia(ctx, a, key)
	if err != nil {
		return nil, err
	}
	return detailsProto(id, d), nil
}
