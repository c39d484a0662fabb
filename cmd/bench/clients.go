package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// The ways of moving an upload's bytes that are compared: the sequential
// baseline, mediagw's two front doors, and the two physical references.
const (
	modeBaseline = "baseline"
	modeGRPC     = "grpc"
	modeREST     = "rest"
	modeRelay    = "relay"
	modeHop      = "hop"
	modeGRPCHop  = "grpc-hop"
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
	// selfChecked marks an upload the client verified itself (the hop,
	// whose far end keeps nothing to inspect).
	selfChecked bool
	// answered is the size the far end answered (gRPC paths).
	answered int64
}

// keyed makes every gRPC and REST upload through mediagw carry a fresh
// idempotency key (-keyed), so that mediagw records it in its ledger: the
// rows of -variants with different --ledger then measure the ledger's
// cost. Uploads through a mediagw with --ledger off (which refuses keys)
// and through the bare relay carry none: they are the rows without ledger.
var keyed bool

// setKeyed turns keys on for the uploads of c, a client of a mediagw
// started with args, when -keyed is set and that mediagw has a ledger.
func setKeyed(c uploader, args []string) {
	on := keyed
	for i, a := range args {
		if a == "--ledger=off" || a == "--ledger" && i+1 < len(args) && args[i+1] == "off" {
			on = false
		}
	}
	switch c := c.(type) {
	case *grpcClient:
		c.keyed = on
	case *restClient:
		c.keyed = on
	case *goClient:
		c.keyed = on
	}
}

// freshKey is an idempotency key no other upload of any run uses.
func freshKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "bench-" + hex.EncodeToString(b[:])
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
	if u.mediaID, u.err = b.initialize(ctx, "video/mp4", g.size); u.err != nil {
		return u
	}
	for i := 0; g.remaining() > 0; i++ {
		n := min(g.remaining(), baselineSegment)
		if u.err = b.appendSegment(ctx, u.mediaID, i, io.LimitReader(g, n), n); u.err != nil {
			return u
		}
	}
	u.err = b.finalize(ctx, u.mediaID)
	return u
}

// initialize sends INIT and returns the media id.
func (b *baseline) initialize(ctx context.Context, mediaType string, total int64) (string, error) {
	body, _ := json.Marshal(map[string]any{"media_type": mediaType, "media_category": "tweet_video", "total_bytes": total})
	var ans struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := b.post(ctx, "/2/media/upload/initialize", "application/json", bytes.NewReader(body), int64(len(body)), &ans); err != nil {
		return "", fmt.Errorf("INIT: %w", err)
	}
	if ans.Data.ID == "" {
		return "", errors.New("INIT: no media id in the answer")
	}
	return ans.Data.ID, nil
}

// appendBoundary is the multipart boundary of the baseline's and the
// relay's APPENDs.
const appendBoundary = "benchboundary7MA4YWxkTrZu0gW"

// appendSegment sends segment i (n bytes read from seg) as a multipart
// APPEND, streamed with a precomputed Content-Length.
func (b *baseline) appendSegment(ctx context.Context, id string, i int, seg io.Reader, n int64) error {
	head := "--" + appendBoundary + "\r\nContent-Disposition: form-data; name=\"segment_index\"\r\n\r\n" + strconv.Itoa(i) + "\r\n" +
		"--" + appendBoundary + "\r\nContent-Disposition: form-data; name=\"media\"; filename=\"blob\"\r\nContent-Type: application/octet-stream\r\n\r\n"
	tail := "\r\n--" + appendBoundary + "--\r\n"
	body := io.MultiReader(strings.NewReader(head), seg, strings.NewReader(tail))
	size := int64(len(head)) + n + int64(len(tail))
	if err := b.post(ctx, "/2/media/upload/"+id+"/append", "multipart/form-data; boundary="+appendBoundary, body, size, nil); err != nil {
		return fmt.Errorf("APPEND %d: %w", i, err)
	}
	return nil
}

// finalize sends FINALIZE.
func (b *baseline) finalize(ctx context.Context, id string) error {
	if err := b.post(ctx, "/2/media/upload/"+id+"/finalize", "", nil, 0, nil); err != nil {
		return fmt.Errorf("FINALIZE: %w", err)
	}
	return nil
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
		return &httpError{method: req.Method, path: req.URL.Path, status: resp.StatusCode, body: string(b)}
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			return fmt.Errorf("%s: %w: %.300s", req.URL.Path, err, b)
		}
	}
	return nil
}

// httpError is a non-2xx answer.
type httpError struct {
	method, path string
	status       int
	body         string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %.300s", e.method, e.path, e.status, e.body)
}

// restClient uploads through mediagw's REST gateway (or the bare relay):
// one POST of the raw body streamed from the generator to url+path.
type restClient struct {
	url, path string
	hc        *http.Client
	keyed     bool // a fresh idempotency key per upload
}

func (r *restClient) upload(ctx context.Context, g *gen) (u upload) {
	u = upload{genID: g.id, size: g.size, start: time.Now()}
	defer func() { u.end, u.lastByte = time.Now(), g.doneAt }()
	q := "?media_type=video%2Fmp4"
	if r.keyed {
		q += "&idempotency_key=" + freshKey()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url+r.path+q, io.NopCloser(g))
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
	keyed bool // a fresh idempotency key per upload
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
	st := &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: g.size}
	if c.keyed {
		st.IdempotencyKey = freshKey()
	}
	start := &mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Start{Start: st}}
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
	u.mediaID, u.answered = resp.GetMediaId(), resp.GetSize()
	return u
}

func cmpErr(status, send error) error {
	if status != nil {
		return status
	}
	return fmt.Errorf("send: %w", send)
}

// mediaInfo is X's view of a media, as the emulator (GET /_xfake/media/ID)
// and the sink (GET /_sink/media/ID) both describe it.
type mediaInfo struct {
	State         string    `json:"state"`
	Size          int64     `json:"size"`
	SHA256        string    `json:"sha256"`
	Digest        string    `json:"digest"` // the sink's "kind:HEX"
	FirstAppendAt time.Time `json:"first_append_at"`
	FinalizedAt   time.Time `json:"finalized_at"`
}

// inspector reads X's view of a media: url+prefix+ID.
type inspector struct {
	url, prefix string
	hc          *http.Client
}

func (in *inspector) media(ctx context.Context, id string) (mediaInfo, error) {
	var info mediaInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.url+in.prefix+id, nil)
	if err != nil {
		return info, err
	}
	return info, do(in.hc, req, &info)
}

// check verifies a finished upload against X: finalized, the
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
	got, kind := info.SHA256, digestSHA256
	if k, hex, ok := strings.Cut(info.Digest, ":"); ok {
		got, kind = hex, k
	}
	if kind != digestSHA256 && kind != digestXXH64 {
		return info.FirstAppendAt, fmt.Errorf("media %s: unknown digest %q", u.mediaID, info.Digest)
	}
	if want := digestOf(kind, u.genID, u.size); got != want {
		return info.FirstAppendAt, fmt.Errorf("media %s: %s %s, sent %s", u.mediaID, kind, got, want)
	}
	return info.FirstAppendAt, nil
}
