package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// restClient speaks mediagw's REST API. Problems (RFC 7807) become gRPC
// status errors carrying the same code, and committed_bytes becomes an
// UploadState detail, as over gRPC.
type restClient struct {
	base  *url.URL
	http  *http.Client
	creds credentialsFrom
}

func newRESTClient(o *connOptions) (client, error) {
	base, err := url.Parse(strings.TrimSuffix(o.RESTURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("--rest-url: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if base.Scheme == "https" {
		cfg, err := tlsConfig(o)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = cfg
	}
	// No overall timeout: an upload takes as long as its bytes take; a
	// stalled one is ended by the stall watchdog.
	return &restClient{base: base, http: &http.Client{Transport: tr}, creds: credentialsFrom{o}}, nil
}

func (c *restClient) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

func (c *restClient) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, &localError{err}
	}
	b, err := c.creds.bearer()
	if err != nil {
		return nil, err
	}
	if b != "" {
		req.Header.Set("Authorization", "Bearer "+b)
	}
	x, err := c.creds.xToken()
	if err != nil {
		return nil, err
	}
	if x != "" {
		req.Header.Set("X-Access-Token", x)
	}
	return req, nil
}

// do sends req and decodes a 200 answer into out, or returns the
// problem as a status error.
func (c *restClient) do(req *http.Request, out proto.Message) error {
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

func (c *restClient) Upload(ctx context.Context, start *mediagwv1.UploadStart, body io.Reader, sent func(int)) (*mediagwv1.UploadResponse, error) {
	q := url.Values{}
	q.Set("media_type", start.GetMediaType())
	q.Set("total_bytes", strconv.FormatInt(start.GetTotalBytes(), 10))
	if start.GetMediaCategory() != mediagwv1.MediaCategory_MEDIA_CATEGORY_UNSPECIFIED {
		q.Set("media_category", strings.ToLower(strings.TrimPrefix(start.GetMediaCategory().String(), "MEDIA_CATEGORY_")))
	}
	if start.GetSha256() != "" {
		q.Set("sha256", start.GetSha256())
	}
	if start.GetAccount() != "" {
		q.Set("account", start.GetAccount())
	}
	if start.ResumeOffset != nil {
		q.Set("resume_offset", strconv.FormatInt(start.GetResumeOffset(), 10))
	}
	actionQuery(q, start) // media.go
	cr := &countingReader{r: body, sent: sent}
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/media:upload", q, cr)
	if err != nil {
		return nil, err
	}
	req.ContentLength = start.GetTotalBytes() - start.GetResumeOffset()
	req.Header.Set("Content-Type", "application/octet-stream")
	if k := start.GetIdempotencyKey(); k != "" {
		req.Header.Set("Idempotency-Key", k)
	}
	out := &mediagwv1.UploadResponse{}
	if err := c.do(req, out); err != nil {
		if cr.err != nil {
			return nil, &localError{fmt.Errorf("reading the file: %w", cr.err)}
		}
		return nil, err
	}
	return out, nil
}

func (c *restClient) GetUpload(ctx context.Context, key string) (*mediagwv1.UploadState, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/uploads/"+url.PathEscape(key), nil, nil)
	if err != nil {
		return nil, err
	}
	out := &mediagwv1.UploadState{}
	return out, c.do(req, out)
}

func (c *restClient) GetStatus(ctx context.Context, id string) (*mediagwv1.ProcessingStatus, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/media/"+url.PathEscape(id)+"/status", nil, nil)
	if err != nil {
		return nil, err
	}
	out := &mediagwv1.ProcessingStatus{}
	return out, c.do(req, out)
}

func (c *restClient) WatchStatus(ctx context.Context, id string, each func(*mediagwv1.ProcessingStatus)) error {
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
// first state: a problem document (code is the gRPC code name).
func inBandError(raw json.RawMessage) error {
	var p struct {
		Detail string `json:"detail"`
		Code   string `json:"code"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return status.Errorf(codes.Unknown, "the watch ended with an error: %s", raw)
	}
	c := codes.Unknown
	if v, ok := code.Code_value[p.Code]; ok {
		c = codes.Code(v)
	}
	return status.Error(c, p.Detail)
}

// countingReader reports what the HTTP client reads from the file and
// keeps the file's own read error apart from the transport's.
type countingReader struct {
	r    io.Reader
	sent func(int)
	err  error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.sent(n)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		c.err = err
	}
	return n, err
}

// transportError turns a failed HTTP exchange into Unavailable (the
// connection broke: retry) unless the caller cancelled.
func transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL repeats the query
	}
	return status.Errorf(codes.Unavailable, "connection to mediagw lost: %v", err)
}

// problemError converts a non-200 answer (an RFC 7807 problem from
// mediagw, or anything a proxy in between sends) to a status error.
func problemError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var p struct {
		Detail            string    `json:"detail"`
		Code              string    `json:"code"`
		CommittedBytes    jsonInt64 `json:"committed_bytes"`
		RetryAfterSeconds int64     `json:"retry_after_seconds"`
	}
	perr := json.Unmarshal(b, &p)
	c, known := codes.Code(0), false
	if perr == nil && p.Code != "" {
		if v, ok := code.Code_value[p.Code]; ok {
			c, known = codes.Code(v), true
		}
	}
	if !known {
		c = codeForHTTP(resp.StatusCode)
	}
	msg := p.Detail
	if msg == "" {
		msg = strings.TrimSpace(fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
	}
	st := status.New(c, msg)
	var details []protoadapt.MessageV1
	if p.CommittedBytes.set {
		details = append(details, &mediagwv1.UploadState{CommittedBytes: p.CommittedBytes.v})
	}
	if ra := retryAfter(resp, p.RetryAfterSeconds); ra != nil {
		details = append(details, ra)
	}
	if len(details) > 0 {
		if withD, err := st.WithDetails(details...); err == nil {
			st = withD
		}
	}
	return st.Err()
}

// codeForHTTP maps an HTTP status with no problem code to the gRPC code
// grpc-gateway would have answered it for.
func codeForHTTP(s int) codes.Code {
	switch s {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusConflict:
		return codes.FailedPrecondition
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codes.Unavailable
	case 499:
		return codes.Canceled
	}
	return codes.Unknown
}

// jsonInt64 reads a JSON number or a string holding one (protojson's
// int64 form), and remembers whether the field was there.
type jsonInt64 struct {
	v   int64
	set bool
}

func (j *jsonInt64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return err
	}
	j.v, j.set = v, true
	return nil
}

// retryAfter reads when to try again from the problem's
// retry_after_seconds or the Retry-After header (seconds).
func retryAfter(resp *http.Response, secs int64) *errdetails.RetryInfo {
	if secs <= 0 {
		secs, _ = strconv.ParseInt(strings.TrimSpace(resp.Header.Get("Retry-After")), 10, 64)
	}
	if secs <= 0 {
		return nil
	}
	return &errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(secs) * time.Second)}
}
