package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// maxAltText is X's bound on alt text, in characters.
const maxAltText = 1000

// uploadActions are the upload flags of the metadata and subtitles
// mediagw applies once the media is usable.
type uploadActions struct {
	altText     string
	altTextFile string
	sensitive   string
	subtitles   string
	subLang     string
	subName     string

	md    *mediagwv1.MediaMetadata
	track *mediagwv1.SubtitlesTrack // set once the subtitles file is uploaded
}

func (a *uploadActions) register(fs *flag.FlagSet) {
	fs.StringVar(&a.altText, "alt-text", "", "alt text set on the media once it is usable (at most 1000 characters)")
	fs.StringVar(&a.altTextFile, "alt-text-file", "", "read the alt text from this file (UTF-8)")
	fs.StringVar(&a.sensitive, "sensitive", "", "sensitive-media warnings: adult, graphic, other (comma-separated)")
	fs.StringVar(&a.subtitles, "subtitles", "", "SRT or WebVTT file uploaded first and attached to the video once it succeeded")
	fs.StringVar(&a.subLang, "subtitles-language", "", "language of --subtitles: two upper-case letters (EN)")
	fs.StringVar(&a.subName, "subtitles-name", "", "display name of --subtitles (English)")
}

// validate checks the flags before anything is sent.
func (a *uploadActions) validate() error {
	if a.altText != "" && a.altTextFile != "" {
		return errors.New("give --alt-text or --alt-text-file, not both")
	}
	alt, have := a.altText, a.altText != ""
	if a.altTextFile != "" {
		b, err := os.ReadFile(a.altTextFile)
		if err != nil {
			return fmt.Errorf("--alt-text-file: %w", err)
		}
		alt, have = strings.TrimRight(string(b), "\r\n"), true
	}
	if have {
		if !utf8.ValidString(alt) {
			return errors.New("the alt text is not valid UTF-8")
		}
		if n := utf8.RuneCountInString(alt); n > maxAltText {
			return fmt.Errorf("the alt text has %d characters; X takes at most %d", n, maxAltText)
		}
		a.md = &mediagwv1.MediaMetadata{AltText: &alt}
	}
	if a.sensitive != "" {
		w := &mediagwv1.SensitiveMediaWarning{}
		for _, f := range strings.Split(a.sensitive, ",") {
			switch strings.TrimSpace(f) {
			case "adult":
				w.AdultContent = true
			case "graphic":
				w.GraphicViolence = true
			case "other":
				w.Other = true
			default:
				return fmt.Errorf("--sensitive %q: name adult, graphic or other", f)
			}
		}
		if a.md == nil {
			a.md = &mediagwv1.MediaMetadata{}
		}
		a.md.SensitiveMediaWarning = w
	}
	switch {
	case a.subtitles == "" && (a.subLang != "" || a.subName != ""):
		return errors.New("--subtitles-language and --subtitles-name go with --subtitles")
	case a.subtitles != "" && !validLanguage(a.subLang):
		return fmt.Errorf("--subtitles-language %q: two upper-case letters, as X takes them (EN, FR)", a.subLang)
	}
	return nil
}

func validLanguage(s string) bool {
	return len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z'
}

// prepare uploads the subtitles file, when one is given, before the videos.
func (a *uploadActions) prepare(ctx context.Context, u *uploader, account string) error {
	if a.subtitles == "" {
		return nil
	}
	m, err := inspect(a.subtitles, "", mediagwv1.MediaCategory_MEDIA_CATEGORY_SUBTITLES, account, "")
	if err != nil {
		return fmt.Errorf("--subtitles: %w", err)
	}
	resp, err := u.upload(ctx, m, noProgress{})
	if err != nil {
		return fmt.Errorf("uploading --subtitles %s: %s", a.subtitles, describe(err))
	}
	a.track = &mediagwv1.SubtitlesTrack{SubtitlesMediaId: resp.GetMediaId(), LanguageCode: a.subLang, DisplayName: a.subName}
	return nil
}

// rekey makes the derived idempotency key of m depend on the metadata and
// subtitles too, so that the same file with other alt text is another
// upload. A key given with --idempotency-key stands.
func (a *uploadActions) rekey(m *mediaFile, given string) {
	if given != "" || a == nil || a.md == nil && a.track == nil {
		return
	}
	b, _ := protojson.Marshal(&mediagwv1.UploadStart{Metadata: a.md, Subtitles: a.tracks()})
	sum := sha256.Sum256(append([]byte(m.key+":"), b...))
	m.key = "ctl-" + hex.EncodeToString(sum[:16])
}

func (a *uploadActions) tracks() []*mediagwv1.SubtitlesTrack {
	if a.track == nil {
		return nil
	}
	return []*mediagwv1.SubtitlesTrack{a.track}
}

// decorate adds the metadata and subtitles to a start message.
func (a *uploadActions) decorate(start *mediagwv1.UploadStart) {
	if a == nil {
		return
	}
	start.Metadata, start.Subtitles = a.md, a.tracks()
}

// actionQuery adds the REST fields of start's metadata and subtitles.
func actionQuery(q url.Values, start *mediagwv1.UploadStart) {
	if md := start.GetMetadata(); md != nil {
		b, _ := protojson.Marshal(md)
		q.Set("metadata", string(b))
	}
	for _, t := range start.GetSubtitles() {
		q.Add("subtitles", t.GetSubtitlesMediaId()+":"+t.GetLanguageCode()+":"+t.GetDisplayName())
	}
}

// noProgress shows nothing.
type noProgress struct{}

func (noProgress) at(int64)               {}
func (noProgress) add(int, time.Duration) {}

// mediaClient is what the media commands need of a transport.
type mediaClient interface {
	GetMedia(ctx context.Context, req *mediagwv1.GetMediaRequest) (*mediagwv1.MediaInfo, error)
	SetMetadata(ctx context.Context, req *mediagwv1.SetMetadataRequest) (*mediagwv1.SetMetadataResponse, error)
	AttachSubtitles(ctx context.Context, req *mediagwv1.AttachSubtitlesRequest) (*mediagwv1.AttachSubtitlesResponse, error)
	DetachSubtitles(ctx context.Context, req *mediagwv1.DetachSubtitlesRequest) (*mediagwv1.DetachSubtitlesResponse, error)
}

var (
	_ mediaClient = (*grpcClient)(nil)
	_ mediaClient = (*restClient)(nil)
)

func (c *grpcClient) GetMedia(ctx context.Context, req *mediagwv1.GetMediaRequest) (*mediagwv1.MediaInfo, error) {
	ctx, err := c.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	return c.svc.GetMedia(ctx, req)
}

func (c *grpcClient) SetMetadata(ctx context.Context, req *mediagwv1.SetMetadataRequest) (*mediagwv1.SetMetadataResponse, error) {
	ctx, err := c.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	return c.svc.SetMetadata(ctx, req)
}

func (c *grpcClient) AttachSubtitles(ctx context.Context, req *mediagwv1.AttachSubtitlesRequest) (*mediagwv1.AttachSubtitlesResponse, error) {
	ctx, err := c.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	return c.svc.AttachSubtitles(ctx, req)
}

func (c *grpcClient) DetachSubtitles(ctx context.Context, req *mediagwv1.DetachSubtitlesRequest) (*mediagwv1.DetachSubtitlesResponse, error) {
	ctx, err := c.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	return c.svc.DetachSubtitles(ctx, req)
}

func (c *restClient) call(ctx context.Context, method, path string, body []byte, out proto.Message) error {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := c.newRequest(ctx, method, path, nil, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.do(req, out)
}

func (c *restClient) GetMedia(ctx context.Context, req *mediagwv1.GetMediaRequest) (*mediagwv1.MediaInfo, error) {
	out := &mediagwv1.MediaInfo{}
	return out, c.call(ctx, http.MethodGet, "/v1/media/"+url.PathEscape(req.GetMediaId()), nil, out)
}

func (c *restClient) SetMetadata(ctx context.Context, req *mediagwv1.SetMetadataRequest) (*mediagwv1.SetMetadataResponse, error) {
	b, _ := protojson.Marshal(req.GetMetadata())
	out := &mediagwv1.SetMetadataResponse{}
	return out, c.call(ctx, http.MethodPost, "/v1/media/"+url.PathEscape(req.GetMediaId())+"/metadata", b, out)
}

func (c *restClient) AttachSubtitles(ctx context.Context, req *mediagwv1.AttachSubtitlesRequest) (*mediagwv1.AttachSubtitlesResponse, error) {
	b, _ := protojson.Marshal(req)
	out := &mediagwv1.AttachSubtitlesResponse{}
	return out, c.call(ctx, http.MethodPost, "/v1/media/"+url.PathEscape(req.GetVideoMediaId())+"/subtitles", b, out)
}

func (c *restClient) DetachSubtitles(ctx context.Context, req *mediagwv1.DetachSubtitlesRequest) (*mediagwv1.DetachSubtitlesResponse, error) {
	out := &mediagwv1.DetachSubtitlesResponse{}
	return out, c.call(ctx, http.MethodDelete, "/v1/media/"+url.PathEscape(req.GetVideoMediaId())+"/subtitles/"+url.PathEscape(req.GetLanguageCode()), nil, out)
}
