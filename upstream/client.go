package upstream

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"
)

// now is the package clock; tests may replace it.
var now = time.Now

// Default configuration values.
const (
	// DefaultSegmentSize is 4 MiB: what X's own tools send, and safely below
	// the 5 MiB requests that have met 413 on v2.
	DefaultSegmentSize = 4 << 20
	// DefaultMaxSegmentSize is also 4 MiB. X documents 5 MB for v1.1 and
	// nothing for v2, where 5 MiB APPENDs were seen rejected with 413, so
	// the planner stays at the proven size: 1000 × 4 MiB ≈ 4 GiB per upload.
	// Raise it only for an X that is known to take larger segments.
	DefaultMaxSegmentSize = 4 << 20
	DefaultParallelism    = 4
	DefaultMaxInFlight    = 64
	DefaultMaxAttempts    = 5
	// DefaultRateLimitMaxWait bounds how long a request waits for a
	// rate-limit window to reset before failing with a RateLimitError.
	DefaultRateLimitMaxWait = time.Minute
	DefaultAttemptTimeout   = 15 * time.Second
	// DefaultMinThroughput (bytes/s) scales the per-attempt timeout with the
	// request size: a 4 MiB APPEND gets 15 s + 32 s.
	DefaultMinThroughput = 128 << 10
	DefaultBackoffBase   = 250 * time.Millisecond
	DefaultBackoffMax    = 10 * time.Second
)

// Config configures a [Client]. Zero fields take the documented defaults.
type Config struct {
	// BaseURL is X's API root, e.g. "https://api.x.com" (v2) or
	// "https://upload.twitter.com" (v1.1). Required. It comes from the
	// operator's configuration; callers of mediagw can never choose it.
	BaseURL string
	// Dialect selects the API flavour; default [DialectV2].
	Dialect Dialect
	// Transport sends requests. Default: a clone of http.DefaultTransport
	// with MaxIdleConnsPerHost ≥ MaxInFlight, so parallel APPENDs reuse
	// connections.
	Transport http.RoundTripper
	// Credentials are used by uploads and calls that carry none.
	Credentials Credentials
	// SegmentSize is the preferred APPEND size; default 4 MiB. Files larger
	// than 1000 × SegmentSize get larger segments (see [PlanSegments]).
	SegmentSize int64
	// MaxSegmentSize caps segment size; default 4 MiB (see
	// DefaultMaxSegmentSize). Files that would need larger segments are
	// refused with [ErrSegmentTooLarge] before INIT.
	MaxSegmentSize int64
	// Parallelism is the number of APPENDs in flight per upload; default 4.
	// Memory per upload is at most (Parallelism+1) segments.
	Parallelism int
	// MaxInFlight caps the segment buffers held across all uploads of the
	// Client, being filled or in flight; default 64. It bounds the
	// Client's buffer memory to MaxInFlight × segment size (256 MiB at the
	// defaults). A writer that needs a buffer when all are out waits, first
	// come, first served.
	MaxInFlight int
	// MaxAttempts bounds attempts per call (INIT, each APPEND, FINALIZE,
	// STATUS) on timeouts, connection errors, 408 and 5xx; default 5.
	MaxAttempts int
	// AttemptTimeout is the fixed part of the per-attempt timeout; default
	// 15 s. The size-dependent part is bytes / MinThroughput.
	AttemptTimeout time.Duration
	// MinThroughput in bytes per second scales the per-attempt timeout with
	// the body size; default 128 KiB/s.
	MinThroughput int64
	// BackoffBase and BackoffMax shape the exponential backoff between
	// retries (full jitter: a uniform delay in [0, min(max, base·2ⁿ)]);
	// defaults 250 ms and 10 s.
	BackoffBase, BackoffMax time.Duration
	// RateLimitMaxWait is the longest a request waits for a rate-limit reset
	// (client-side hold or X's 429); beyond it the call fails with a
	// [*RateLimitError]. Default 1 minute; negative means never wait.
	RateLimitMaxWait time.Duration
	// TracerProvider and MeterProvider default to the otel globals. Each
	// X call attempt is a client span ("X APPEND"), a child of the span in
	// the context the call was made with.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// PropagateTraceContext sends X the W3C traceparent of each attempt's
	// span. Off by default: X is told nothing of the caller's context. Even
	// when on, only traceparent is sent, never tracestate or baggage, which
	// may carry the caller's own data.
	PropagateTraceContext bool
	// Logger receives debug logs of retries and waits; default discards.
	// Tokens, signatures and media bytes are never logged.
	Logger *slog.Logger
}

// Client talks to X's media upload API. It is safe for concurrent use; all
// uploads through one Client share its connection pool, the global in-flight
// cap and the rate-limit budgets.
type Client struct {
	cfg     Config
	base    *url.URL
	d       dialect
	rt      http.RoundTripper
	global  *semaphore.Weighted
	budgets budgets
	log     *slog.Logger
	tel     *telemetry

	poolMu sync.Mutex
	free   []*[]byte // full-size segment buffers ready for reuse
	// held and peakHeld count segment buffers taken from the pools and not
	// yet returned (for tests of the memory bound).
	held, peakHeld atomic.Int64
}

// New validates cfg, applies defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || cfg.BaseURL == "" || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, invalidf("BaseURL must be an absolute http(s) URL")
	}
	if u.User != nil {
		return nil, invalidf("BaseURL must not contain user info")
	}
	d, err := newDialect(cfg.Dialect)
	if err != nil {
		return nil, err
	}
	setDefaults(&cfg)
	if cfg.MaxSegmentSize < cfg.SegmentSize {
		return nil, invalidf("MaxSegmentSize %d is below SegmentSize %d", cfg.MaxSegmentSize, cfg.SegmentSize)
	}
	c := &Client{
		cfg:    cfg,
		base:   u,
		d:      d,
		rt:     cfg.Transport,
		global: semaphore.NewWeighted(int64(cfg.MaxInFlight)),
		log:    cfg.Logger,
	}
	if c.rt == nil {
		c.rt = defaultTransport(cfg.MaxInFlight)
	}
	if c.tel, err = newTelemetry(&cfg); err != nil {
		return nil, fmt.Errorf("upstream: telemetry: %w", err)
	}
	return c, nil
}

func setDefaults(cfg *Config) {
	if cfg.Dialect == "" {
		cfg.Dialect = DialectV2
	}
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.SegmentSize, DefaultSegmentSize)
	def(&cfg.MaxSegmentSize, max(DefaultMaxSegmentSize, cfg.SegmentSize))
	def(&cfg.MinThroughput, DefaultMinThroughput)
	defInt(&cfg.Parallelism, DefaultParallelism)
	defInt(&cfg.MaxInFlight, DefaultMaxInFlight)
	defInt(&cfg.MaxAttempts, DefaultMaxAttempts)
	defDur(&cfg.AttemptTimeout, DefaultAttemptTimeout)
	defDur(&cfg.BackoffBase, DefaultBackoffBase)
	defDur(&cfg.BackoffMax, DefaultBackoffMax)
	switch {
	case cfg.RateLimitMaxWait == 0:
		cfg.RateLimitMaxWait = DefaultRateLimitMaxWait
	case cfg.RateLimitMaxWait < 0:
		cfg.RateLimitMaxWait = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// defaultTransport clones http.DefaultTransport with a connection pool large
// enough that parallel APPENDs reuse connections instead of churning them.
func defaultTransport(inFlight int) http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	t = t.Clone()
	t.MaxIdleConns = max(t.MaxIdleConns, 2*inFlight)
	t.MaxIdleConnsPerHost = max(inFlight, 8)
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = 0 // per-attempt contexts bound every call
	t.ExpectContinueTimeout = time.Second
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return t
}

// creds returns c's default credentials when cr is nil.
func (c *Client) creds(cr Credentials) (Credentials, error) {
	if cr != nil {
		return cr, nil
	}
	if c.cfg.Credentials == nil {
		return nil, invalidf("no credentials given and Config.Credentials is nil")
	}
	return c.cfg.Credentials, nil
}

// buffer returns a pooled segment buffer of exactly size bytes.
func (c *Client) buffer(size int64) *[]byte {
	for h := c.held.Add(1); ; {
		if p := c.peakHeld.Load(); h <= p || c.peakHeld.CompareAndSwap(p, h) {
			break
		}
	}
	if size == c.cfg.SegmentSize {
		c.poolMu.Lock()
		if n := len(c.free); n > 0 {
			b := c.free[n-1]
			c.free = c.free[:n-1]
			c.poolMu.Unlock()
			return b
		}
		c.poolMu.Unlock()
	}
	b := make([]byte, size)
	return &b
}

// release returns a segment buffer. Full-size buffers are kept for reuse;
// since at most MaxInFlight buffers are out at once (the global slots), the
// free list never holds more than that either, and reused buffers make no
// garbage for the collector to chase.
func (c *Client) release(b *[]byte) {
	if b == nil {
		return
	}
	c.held.Add(-1)
	if int64(cap(*b)) != c.cfg.SegmentSize {
		return
	}
	*b = (*b)[:cap(*b)]
	c.poolMu.Lock()
	if len(c.free) < c.cfg.MaxInFlight {
		c.free = append(c.free, b)
	}
	c.poolMu.Unlock()
}
