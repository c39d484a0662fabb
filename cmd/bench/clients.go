package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	mediagwv1 "mediagw/gen/mediagw/v1"
	"mediagw/upstream/xfake"
)

// The three ways of uploading that are compared.
const (
	modeBaseline = "baseline"
	modeGRPC     = "grpc"
	modeREST     = "rest"
)

// baselineSegment is the APPEND size of xurl and X's sample code.
const baselineSegment = 4 << 20

// upload is the outcome of one upload, as the client saw it.
type upload struct {
	mediaID  string
	genID    uint64
	size     int64
	start    time.Time // just before the first byte left the client
	lastByte time.Time // when the last byte was handed to the transport
	end      time.Time // when the answer arrived
	err      error
}

// uploader sends one upload of the bytes of g.
type uploader interface {
	upload(ctx context.Context, g *gen) upload
}

// newHTTPClient returns a client for loopback servers: no proxy, no
// compression, enough idle connections for the concurrent scenarios.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}}
}

// baseline is the algorithm of xurl and X's sample code over the v2
// dedicated endpoints: INIT, then one 4 MiB APPEND at a time, then
// FINALIZE, with a bearer token.
type baseline struct {
	url, token string
	hc         *http.Client
}

func (b *baseline) upload(ctx context.Context, g *gen) (u upload) {
	u = upload{genID: g.id, size: g.size, start: time.Now()}
	defer func() { u.end, u.lastByte = time.Now(), g.doneAt }()
	initBody, _ := json.Marshal(map[string]any{"media_type": "video/mp4", "media_category": "tweet_video", "total_bytes": g.size})
	var ans struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if u.err = b.post(ctx, "/2/media/upload/initialize", "application/json", bytes.NewReader(initBody), int64(len(initBody)), &ans); u.err != nil {
		return u
	}
	u.mediaID = ans.Data.ID
	const boundary = "benchboundary7MA4YWxkTrZu0gW"
	for i := 0; g.remaining() > 0; i++ {
		n := min(g.remaining(), baselineSegment)
		head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"segment_index\"\r\n\r\n" + strconv.Itoa(i) + "\r\n" +
			"--" + boundary + "\r\nContent-Disposition: form-data; name=\"media\"; filename=\"blob\"\r\nContent-Type: application/octet-stream\r\n\r\n"
		tail := "\r\n--" + boundary + "--\r\n"
		body := io.MultiReader(bytes.NewReader([]byte(head)), io.LimitReader(g, n), bytes.NewReader([]byte(tail)))
		size := int64(len(head)) + n + int64(len(tail))
		if u.err = b.post(ctx, "/2/media/upload/"+u.mediaID+"/append", "multipart/form-data; boundary="+boundary, body, size, nil); u.err != nil {
			u.err = fmt.Errorf("APPEND %d: %w", i, u.err)
			return u
		}
	}
	if u.err = b.post(ctx, "/2/media/upload/"+u.mediaID+"/finalize", "", nil, 0, nil); u.err != nil {
		u.err = fmt.Errorf("FINALIZE: %w", u.err)
	}
	return u
}

func (b *baseline) post(ctx context.Context, path, ctype string, body io.Reader, size int64, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url+path, body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	return do(b.hc, req, into)
}

// do sends req and decodes a 2xx JSON answer into into (if not nil).
func do(hc *http.Client, req *http.Request, into any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d: %.300s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			return fmt.Errorf("%s: %w: %.300s", req.URL.Path, err, b)
		}
	}
	return nil
}

// restClient uploads through mediagw's REST gateway: one POST with the raw
// body streamed from the generator.
type restClient struct {
	url string
	hc  *http.Client
}

func (r *restClient) upload(ctx context.Context, g *gen) (u upload) {
	u = upload{genID: g.id, size: g.size, start: time.Now()}
	defer func() { u.end, u.lastByte = time.Now(), g.doneAt }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url+"/v1/media:upload?media_type=video%2Fmp4", io.NopCloser(g))
	if err != nil {
		u.err = err
		return u
	}
	req.ContentLength = g.size
	req.Header.Set("Content-Type", "video/mp4")
	var ans struct {
		MediaID string `json:"media_id"`
	}
	if u.err = do(r.hc, req, &ans); u.err == nil {
		u.mediaID = ans.MediaID
	}
	return u
}

// grpcClient uploads through mediagw's gRPC Upload stream in chunk-sized
// messages over one shared connection.
type grpcClient struct {
	conn  *grpc.ClientConn
	api   mediagwv1.MediaUploadServiceClient
	chunk int
}

func newGRPCClient(addr string, chunk int) (*grpcClient, error) {
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithNoProxy())
	if err != nil {
		return nil, err
	}
	return &grpcClient{conn: conn, api: mediagwv1.NewMediaUploadServiceClient(conn), chunk: chunk}, nil
}

func (c *grpcClient) upload(ctx context.Context, g *gen) (u upload) {
	u = upload{genID: g.id, size: g.size, start: time.Now()}
	defer func() { u.end, u.lastByte = time.Now(), g.doneAt }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.api.Upload(ctx)
	if err != nil {
		u.err = err
		return u
	}
	start := &mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Start{
		Start: &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: g.size}}}
	if err := stream.Send(start); err != nil {
		_, u.err = stream.CloseAndRecv()
		u.err = cmpErr(u.err, err)
		return u
	}
	for p := g.Chunk(c.chunk); p != nil; p = g.Chunk(c.chunk) {
		msg := &mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Chunk{Chunk: p}}
		if err := stream.Send(msg); err != nil {
			// io.EOF: the server ended the call; its status says why.
			_, u.err = stream.CloseAndRecv()
			u.err = cmpErr(u.err, err)
			return u
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		u.err = err
		return u
	}
	u.mediaID = resp.GetMediaId()
	return u
}

func cmpErr(status, send error) error {
	if status != nil {
		return status
	}
	return fmt.Errorf("send: %w", send)
}

// inspector reads the emulator's view of a media.
type inspector struct {
	url string
	hc  *http.Client
}

func (in *inspector) media(ctx context.Context, id string) (xfake.MediaInfo, error) {
	var info xfake.MediaInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.url+"/_xfake/media/"+id, nil)
	if err != nil {
		return info, err
	}
	return info, do(in.hc, req, &info)
}

// check verifies a finished upload against the emulator: finalized, the
// right size and the SHA-256 of the generated bytes. It returns the time
// of the first APPEND the emulator saw.
func (in *inspector) check(ctx context.Context, u upload) (time.Time, error) {
	if u.mediaID == "" {
		return time.Time{}, errors.New("no media id in the answer")
	}
	info, err := in.media(ctx, u.mediaID)
	if err != nil {
		return time.Time{}, err
	}
	switch {
	case info.State == "uploading" || info.FinalizedAt.IsZero():
		return info.FirstAppendAt, fmt.Errorf("media %s not finalized (state %s)", u.mediaID, info.State)
	case info.Size != u.size:
		return info.FirstAppendAt, fmt.Errorf("media %s: size %d, sent %d", u.mediaID, info.Size, u.size)
	}
	if want := digest(u.genID, u.size); info.SHA256 != want {
		return info.FirstAppendAt, fmt.Errorf("media %s: sha256 %s, sent %s", u.mediaID, info.SHA256, want)
	}
	return info.FirstAppendAt, nil
}
