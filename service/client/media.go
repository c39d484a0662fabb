package client

import (
	"bytes"
	"context"
	"net/http"
	"net/url"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// mediaTransport is what the media calls need of a transport; both
// transports have it.
type mediaTransport interface {
	getMedia(ctx context.Context, req *mediagwv1.GetMediaRequest) (*mediagwv1.MediaInfo, error)
	setMetadata(ctx context.Context, req *mediagwv1.SetMetadataRequest) (*mediagwv1.SetMetadataResponse, error)
	attachSubtitles(ctx context.Context, req *mediagwv1.AttachSubtitlesRequest) (*mediagwv1.AttachSubtitlesResponse, error)
	detachSubtitles(ctx context.Context, req *mediagwv1.DetachSubtitlesRequest) (*mediagwv1.DetachSubtitlesResponse, error)
}

var (
	_ mediaTransport = (*grpcTransport)(nil)
	_ mediaTransport = (*restTransport)(nil)
)

// GetMedia returns X's description of the caller's media (by media id or
// media key): type, dimensions, duration, alt text, variants, preview.
func (c *Client) GetMedia(ctx context.Context, req *mediagwv1.GetMediaRequest) (*mediagwv1.MediaInfo, error) {
	out, err := c.t.(mediaTransport).getMedia(ctx, req)
	if err != nil {
		return nil, convert(err)
	}
	return out, nil
}

// SetMetadata sets metadata (alt text…) on the caller's media. The call is
// made once: mediagw does not retry it, nor does this.
func (c *Client) SetMetadata(ctx context.Context, req *mediagwv1.SetMetadataRequest) (*mediagwv1.SetMetadataResponse, error) {
	out, err := c.t.(mediaTransport).setMetadata(ctx, req)
	if err != nil {
		return nil, convert(err)
	}
	return out, nil
}

// AttachSubtitles attaches the caller's subtitles upload to its video.
func (c *Client) AttachSubtitles(ctx context.Context, req *mediagwv1.AttachSubtitlesRequest) (*mediagwv1.AttachSubtitlesResponse, error) {
	out, err := c.t.(mediaTransport).attachSubtitles(ctx, req)
	if err != nil {
		return nil, convert(err)
	}
	return out, nil
}

// DetachSubtitles removes the video's subtitles in one language.
func (c *Client) DetachSubtitles(ctx context.Context, req *mediagwv1.DetachSubtitlesRequest) (*mediagwv1.DetachSubtitlesResponse, error) {
	out, err := c.t.(mediaTransport).detachSubtitles(ctx, req)
	if err != nil {
		return nil, convert(err)
	}
	return out, nil
}

func (g *grpcTransport) getMedia(ctx context.Context, req *mediagwv1.GetMediaRequest) (*mediagwv1.MediaInfo, error) {
	ctx, err := g.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	return g.svc.GetMedia(ctx, req)
}

func (g *grpcTransport) setMetadata(ctx context.Context, req *mediagwv1.SetMetadataRequest) (*mediagwv1.SetMetadataResponse, error) {
	ctx, err := g.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	return g.svc.SetMetadata(ctx, req)
}

func (g *grpcTransport) attachSubtitles(ctx context.Context, req *mediagwv1.AttachSubtitlesRequest) (*mediagwv1.AttachSubtitlesResponse, error) {
	ctx, err := g.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	return g.svc.AttachSubtitles(ctx, req)
}

func (g *grpcTransport) detachSubtitles(ctx context.Context, req *mediagwv1.DetachSubtitlesRequest) (*mediagwv1.DetachSubtitlesResponse, error) {
	ctx, err := g.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	return g.svc.DetachSubtitles(ctx, req)
}

func (c *restTransport) call(ctx context.Context, method, path string, body proto.Message, out proto.Message) error {
	var r *bytes.Reader
	if body != nil {
		b, err := protojson.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	var req *http.Request
	var err error
	if r != nil {
		req, err = c.newRequest(ctx, method, path, nil, r)
	} else {
		req, err = c.newRequest(ctx, method, path, nil, nil)
	}
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.do(req, out)
}

func (c *restTransport) getMedia(ctx context.Context, req *mediagwv1.GetMediaRequest) (*mediagwv1.MediaInfo, error) {
	out := &mediagwv1.MediaInfo{}
	return out, c.call(ctx, http.MethodGet, "/v1/media/"+url.PathEscape(req.GetMediaId()), nil, out)
}

func (c *restTransport) setMetadata(ctx context.Context, req *mediagwv1.SetMetadataRequest) (*mediagwv1.SetMetadataResponse, error) {
	out := &mediagwv1.SetMetadataResponse{}
	return out, c.call(ctx, http.MethodPost, "/v1/media/"+url.PathEscape(req.GetMediaId())+"/metadata", req.GetMetadata(), out)
}

func (c *restTransport) attachSubtitles(ctx context.Context, req *mediagwv1.AttachSubtitlesRequest) (*mediagwv1.AttachSubtitlesResponse, error) {
	out := &mediagwv1.AttachSubtitlesResponse{}
	return out, c.call(ctx, http.MethodPost, "/v1/media/"+url.PathEscape(req.GetVideoMediaId())+"/subtitles", req, out)
}

func (c *restTransport) detachSubtitles(ctx context.Context, req *mediagwv1.DetachSubtitlesRequest) (*mediagwv1.DetachSubtitlesResponse, error) {
	out := &mediagwv1.DetachSubtitlesResponse{}
	return out, c.call(ctx, http.MethodDelete, "/v1/media/"+url.PathEscape(req.GetVideoMediaId())+"/subtitles/"+url.PathEscape(req.GetLanguageCode()), nil, out)
}

// actionQuery adds the REST upload fields of start's metadata and
// subtitles.
func actionQuery(q url.Values, start *mediagwv1.UploadStart) {
	if md := start.GetMetadata(); md != nil {
		b, _ := protojson.Marshal(md)
		q.Set("metadata", string(b))
	}
	for _, t := range start.GetSubtitles() {
		q.Add("subtitles", t.GetSubtitlesMediaId()+":"+t.GetLanguageCode()+":"+t.GetDisplayName())
	}
}
