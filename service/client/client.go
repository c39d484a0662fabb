package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// DefaultChunkSize is the size of the Upload messages: 32 KiB less gRPC's
// framing (32752 bytes), the size mediagw recommends.
const DefaultChunkSize = 32<<10 - 16

// Client calls one mediagw (or a load balancer in front of replicas). It
// is safe for concurrent use; Close it when done.
type Client struct {
	t         transport
	chunk     int
	retry     RetryPolicy
	stall     time.Duration
	keyPrefix string
	notify    func(Retry)
}

// Option configures New.
type Option func(*config) error

type config struct {
	tlsConfig   *tls.Config
	insecure    bool
	tokens      oauth2.TokenSource
	chunk       int
	rest        string
	httpClient  *http.Client
	dialOptions []grpc.DialOption
	otel        []otelgrpc.Option
	noOTel      bool
	retry       RetryPolicy
	stall       time.Duration
	keyPrefix   string
	notify      func(Retry)
}

// WithTLS uses TLS with cfg (its RootCAs, ServerName and, for mutual TLS,
// Certificates). Without WithTLS or WithInsecure, TLS with the system's
// roots is used.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return errors.New("WithTLS: the TLS config is nil")
		}
		c.tlsConfig = cfg.Clone()
		return nil
	}
}

// WithInsecure connects without TLS (loopback and tests).
func WithInsecure() Option {
	return func(c *config) error { c.insecure = true; return nil }
}

// WithTokenSource sends a bearer token from ts (a JWT mediagw verifies)
// on every call; ts is asked before every call, so wrap it in
// oauth2.ReuseTokenSource to refresh only when it expires.
func WithTokenSource(ts oauth2.TokenSource) Option {
	return func(c *config) error { c.tokens = ts; return nil }
}

// WithChunkSize sets the size of the Upload messages (gRPC), at most
// mediagw's --max-message (1 MiB by default).
func WithChunkSize(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 64<<20 {
			return fmt.Errorf("WithChunkSize: %d is not between 1 and 64 MiB", n)
		}
		c.chunk = n
		return nil
	}
}

// WithREST calls mediagw's REST API at baseURL (http:// or https://)
// instead of gRPC: uploads use the raw-body route POST /v1/media:upload
// with the Idempotency-Key header and resume_offset. New's target is then
// ignored.
func WithREST(baseURL string) Option {
	return func(c *config) error { c.rest = baseURL; return nil }
}

// WithHTTPClient sets the HTTP client of the REST transport (its
// transport's TLS settings win over WithTLS). It must have no overall
// Timeout: an upload takes as long as its bytes take.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error { c.httpClient = hc; return nil }
}

// WithDialOptions adds gRPC dial options (interceptors, keepalive, a
// resolver). A stream interceptor that keeps an Upload chunk message
// after SendMsg returns must copy its chunk: the buffer is reused once
// gRPC has written it.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) error { c.dialOptions = append(c.dialOptions, opts...); return nil }
}

// WithOTel sets the options of the otelgrpc client handler, which
// propagates the caller's trace context to mediagw (global providers by
// default). The REST transport injects the global propagator's headers.
func WithOTel(opts ...otelgrpc.Option) Option {
	return func(c *config) error { c.otel = append(c.otel, opts...); return nil }
}

// WithoutOTel sends no trace context.
func WithoutOTel() Option {
	return func(c *config) error { c.noOTel = true; return nil }
}

// WithRetry sets how failed calls are retried (see RetryPolicy).
func WithRetry(p RetryPolicy) Option {
	return func(c *config) error { c.retry = p; return nil }
}

// WithStallTimeout ends an upload attempt whose bytes stopped moving for
// d (it is then resumed, like a broken stream). Default 1 minute.
func WithStallTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("WithStallTimeout: the timeout must be positive")
		}
		c.stall = d
		return nil
	}
}

// WithKeyPrefix sets the prefix of derived idempotency keys (default
// "mgw-"); at most 16 characters of A-Z a-z 0-9 . _ ~ : -.
func WithKeyPrefix(p string) Option {
	return func(c *config) error {
		if len(p) > 16 || (p != "" && !keyPattern.MatchString(p)) {
			return fmt.Errorf("WithKeyPrefix: %q is not up to 16 characters of A-Z a-z 0-9 . _ ~ : -", p)
		}
		c.keyPrefix = p
		return nil
	}
}

// WithRetryNotify calls fn before every retry of an upload or a watch
// (for logs or metrics).
func WithRetryNotify(fn func(Retry)) Option {
	return func(c *config) error { c.notify = fn; return nil }
}

// Retry describes one retry: what failed and when the next attempt is.
type Retry struct {
	// Op is "upload" or "watch".
	Op string
	// Key is the upload's idempotency key, or the watched media id.
	Key string
	// Err is the attempt's error.
	Err *Error
	// Offset is where the next upload attempt starts.
	Offset int64
	// Wait is how long until the next attempt.
	Wait time.Duration
	// Failures counts the failures in a row without progress.
	Failures int
}

// New returns a client of the mediagw at target (host:port, or any gRPC
// target name), or of its REST API with WithREST. It does not connect:
// the first call does.
func New(target string, opts ...Option) (*Client, error) {
	cfg := &config{chunk: DefaultChunkSize, retry: DefaultRetryPolicy(), stall: time.Minute, keyPrefix: "mgw-"}
	for _, o := range opts {
		if err := o(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.insecure && cfg.tlsConfig != nil {
		return nil, errors.New("WithInsecure and WithTLS exclude each other")
	}
	if err := cfg.retry.validate(); err != nil {
		return nil, err
	}
	var (
		t   transport
		err error
	)
	if cfg.rest != "" {
		var r *restTransport
		if r, err = newREST(cfg); err == nil {
			t = r
			if r.certs != nil {
				t = classified{r, r.certs}
			}
		}
	} else {
		var g *grpcTransport
		if g, err = newGRPC(target, cfg); err == nil {
			t = g
			if g.certs != nil {
				t = classified{g, g.certs}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return &Client{t: t, chunk: cfg.chunk, retry: cfg.retry, stall: cfg.stall, keyPrefix: cfg.keyPrefix, notify: cfg.notify}, nil
}

// Close ends the client's connections.
func (c *Client) Close() error { return c.t.close() }

// GetUpload returns what mediagw's ledger knows of the upload started
// with key (NotFound when it knows none).
func (c *Client) GetUpload(ctx context.Context, key string) (*mediagwv1.UploadState, error) {
	st, err := c.t.getUpload(ctx, key)
	if err != nil {
		e := convert(err)
		e.IdempotencyKey = key
		return nil, e
	}
	return st, nil
}

// GetStatus returns X's processing state of mediaID.
func (c *Client) GetStatus(ctx context.Context, mediaID string) (*mediagwv1.ProcessingStatus, error) {
	st, err := c.t.getStatus(ctx, mediaID)
	if err != nil {
		return nil, convert(err)
	}
	return st, nil
}

// transport is mediagw's API over gRPC or REST. Its errors are gRPC
// status errors (REST problems are converted), so one set of rules
// decides what is retried.
type transport interface {
	// upload sends start and then body, the media from start's
	// resume_offset on; sent is told of every chunk handed on.
	upload(ctx context.Context, start *mediagwv1.UploadStart, body io.Reader, sent func(n int)) (*mediagwv1.UploadResponse, error)
	getUpload(ctx context.Context, key string) (*mediagwv1.UploadState, error)
	getStatus(ctx context.Context, mediaID string) (*mediagwv1.ProcessingStatus, error)
	// watch calls each for every state until the stream ends.
	watch(ctx context.Context, mediaID string, each func(*mediagwv1.ProcessingStatus)) error
	close() error
}

// xTokenKey carries the per-call X user token source in a context.
type xTokenKey struct{}

// ContextWithXToken makes the calls made with the returned context upload
// (and ask statuses) as the X user whose OAuth 2.0 access token is token,
// sent as x-access-token metadata (REST: the X-Access-Token header). A
// hash of it is part of derived idempotency keys; the token itself is
// never logged or put in a key.
func ContextWithXToken(ctx context.Context, token string) context.Context {
	return ContextWithXTokenSource(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}))
}

// ContextWithXTokenSource is ContextWithXToken with a token asked of ts
// at every call (an upload asks once per attempt).
func ContextWithXTokenSource(ctx context.Context, ts oauth2.TokenSource) context.Context {
	return context.WithValue(ctx, xTokenKey{}, ts)
}

// xToken returns the X user token of ctx, or "".
func xToken(ctx context.Context) (string, error) {
	ts, _ := ctx.Value(xTokenKey{}).(oauth2.TokenSource)
	if ts == nil {
		return "", nil
	}
	t, err := ts.Token()
	if err != nil {
		return "", fmt.Errorf("the X user token: %w", err)
	}
	return t.AccessToken, nil
}

// bearer returns the caller's bearer token, or "".
func bearer(ts oauth2.TokenSource) (string, error) {
	if ts == nil {
		return "", nil
	}
	t, err := ts.Token()
	if err != nil {
		return "", fmt.Errorf("the bearer token: %w", err)
	}
	return t.AccessToken, nil
}
