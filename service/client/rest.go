package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"golang.org/x/oauth2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
)

// restTransport speaks mediagw's REST API. Problems (RFC 7807) become
// gRPC status errors carrying the same code, committed_bytes becomes an
// UploadState detail and Retry-After a RetryInfo, as over gRPC.
type restTransport struct {
	base   *url.URL
	http   *http.Client
	tokens oauth2.TokenSource
	otel   bool
	certs  *certWatch
}

func newREST(cfg *config) (*restTransport, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.rest, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("WithREST: %q is not an http or https URL", cfg.rest)
	}
	hc := cfg.httpClient
	var certs *certWatch
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if base.Scheme == "https" {
			tc := cfg.tlsConfig
			if tc == nil {
				tc = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			certs = &certWatch{}
			tr.TLSClientConfig = certs.wrap(tc)
		}
		// No overall timeout: an upload takes as long as its bytes take;
		// a stalled one is ended by the stall watchdog.
		hc = &http.Client{Transport: tr}
	}
	return &restTransport{base: base, http: hc, tokens: cfg.tokens, otel: !cfg.noOTel, certs: certs}, nil
}

func (c *restTransport) close() error {
	c.http.CloseIdleConnections()
	return nil
}

func (c *restTransport) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, localError(err, "")
	}
	b, err := bearer(c.tokens)
	if err != nil {
		return nil, localError(err, "")
	}
	if b != "" {
		req.Header.Set("Authorization", "Bearer "+b)
	}
	x, err := xToken(ctx)
	if err != nil {
		return nil, localError(err, "")
	}
	if x != "" {
		req.Header.Set("X-Access-Token", x)
	}
	if c.otel {
		otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	return req, nil
}

// do sends req and decodes a 200 answer into out, or returns the
// problem as a status error.
func (c *restTransport) do(req *http.Request, out proto.Message) error {
	resp, err := c.http.Do(req)
	if err != nil {
		return transportError(req.Context(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return problemError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return transportError(req.Context(), err)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, out); err != nil {
		return status.Errorf(codes.Internal, "decoding mediagw's answer: %v", err)
	}
	return nil
}

func (c *restTransport) upload(ctx context.Context, start *mediagwv1.UploadStart, body io.Reader, sent func(int)) (*mediagwv1.UploadResponse, error) {
	q := url.Values{}
	if start.GetMediaType() != "" {
		q.Set("media_type", start.GetMediaType())
	}
	if start.GetTotalBytes() > 0 {
		q.Set("total_bytes", strconv.FormatInt(start.GetTotalBytes(), 10))
	}
	if start.GetMediaCategory() != mediagwv1.MediaCategory_MEDIA_CATEGORY_UNSPECIFIED {
		q.Set("media_category", strings.ToLower(strings.TrimPrefix(start.GetMediaCategory().String(), "MEDIA_CATEGORY_")))
	}
	if start.GetSha256() != "" {
		q.Set("sha256", start.GetSha256())
	}
	if start.GetAccount() != "" {
		q.Set("account", start.GetAccount())
	}
	if len(start.GetAdditionalOwners()) > 0 {
		q.Set("additional_owners", strings.Join(start.GetAdditionalOwners(), ","))
	}
	if start.GetShared() {
		q.Set("shared", "true")
	}
	if start.ResumeOffset != nil {
		q.Set("resume_offset", strconv.FormatInt(start.GetResumeOffset(), 10))
	}
	actionQuery(q, start) // media.go
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/media:upload", q, &sentReader{r: body, sent: sent})
	if err != nil {
		return nil, err
	}
	if start.GetTotalBytes() > 0 {
		req.ContentLength = start.GetTotalBytes() - start.GetResumeOffset()
		if req.ContentLength == 0 {
			req.Body = http.NoBody
		}
	} else {
		req.ContentLength = -1 // chunked: mediagw spools an unknown size
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if k := start.GetIdempotencyKey(); k != "" {
		req.Header.Set("Idempotency-Key", k)
	}
	out := &mediagwv1.UploadResponse{}
	if err := c.do(req, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *restTransport) getUpload(ctx context.Context, key string) (*mediagwv1.UploadState, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/uploads/"+url.PathEscape(key), nil, nil)
	if err != nil {
		return nil, err
	}
	out := &mediagwv1.UploadState{}
	return out, c.do(req, out)
}

func (c *restTransport) getStatus(ctx context.Context, id string) (*mediagwv1.ProcessingStatus, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/media/"+url.PathEscape(id)+"/status", nil, nil)
	if err != nil {
		return nil, err
	}
	out := &mediagwv1.ProcessingStatus{}
	return out, c.do(req, out)
}

func (c *restTransport) watch(ctx context.Context, id string, each func(*mediagwv1.ProcessingStatus)) error {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/media/"+url.PathEscape(id)+"/status:watch", nil, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return problemError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return status.Errorf(codes.Internal, "decoding the watch stream: %v", err)
		}
		if len(line.Error) > 0 {
			return inBandError(line.Error)
		}
		st := &mediagwv1.ProcessingStatus{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(line.Result, st); err != nil {
			return status.Errorf(codes.Internal, "decoding the watch stream: %v", err)
		}
		each(st)
	}
	if err := sc.Err(); err != nil {
		return transportError(ctx, err)
	}
	return nil
}

// inBandError converts the error line that ends a watch stream after its
// first state: a problem document, read back by mediagw's error table.
func inBandError(raw json.RawMessage) error {
	var p struct {
		Status int `json:"status"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return status.Errorf(codes.Unknown, "the watch ended with an error: %s", raw)
	}
	return apierr.FromProblem(p.Status, nil, raw)
}

// sentReader reports what the HTTP client reads of the body.
type sentReader struct {
	r    io.Reader
	sent func(int)
}

func (s *sentReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.sent(n)
	}
	return n, err
}

// transportError turns a failed HTTP exchange into Unavailable (the
// connection broke: retry) unless the caller cancelled or TLS failed.
func transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL repeats the query
	}
	if isTLSError(err) {
		return &Error{Code: codes.Unavailable, Message: "TLS handshake with mediagw failed: " + err.Error(), Reason: ReasonTLSHandshake, err: err}
	}
	return status.Errorf(codes.Unavailable, "connection to mediagw lost: %v", err)
}

// problemError converts a non-200 answer (an RFC 7807 problem from
// mediagw, or anything a proxy in between sends) to a status error, with
// the table mediagw made it with (apierr.FromProblem).
func problemError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return apierr.FromProblem(resp.StatusCode, resp.Header, b)
}
