package upstream

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
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
	// the 5 MiB requests that have met 413 on v2. The largest segment
	// depends on the dialect: see [MaxSegmentBytes].
	DefaultSegmentSize = 4 << 20
	DefaultParallelism = 4
	DefaultMaxInFlight = 64
	DefaultBufferWait  = 30 * time.Second
	DefaultSpillAfter  = 500 * time.Millisecond
	DefaultMaxAttempts = 5
	// DefaultRateLimitMaxWait bounds how long a request waits for a
	// rate-limit window to reset before failing with a RateLimitError.
	DefaultRateLimitMaxWait = time.Minute
	// DefaultStallTimeout is how long an attempt may go without progress
	// before it is abandoned and retried (see Config.StallTimeout).
	DefaultStallTimeout = 3 * time.Second
	// DefaultAttemptTimeout bounds one attempt however it progresses: a
	// 5 MB segment still fits at 8 KB/s.
	DefaultAttemptTimeout = 10 * time.Minute
	DefaultBackoffBase    = 250 * time.Millisecond
	DefaultBackoffMax     = 10 * time.Second
)

// Config configures a [Client]. Zero fields take the documented defaults.
type Config struct {
	// BaseURL is X's API root, e.g. "https://api.x.com" (v2) or
	// "https://upload.twitter.com" (v1.1). Required. It comes from the
	// operator's configuration; callers of mediagw can never choose it.
	BaseURL string
	// Dialect selects the API flavour; default [DialectV2].
	Dialect Dialect
	// Transport sends requests. Default: the Client's own HTTP/1.1
	// transport, which keeps a connection per APPEND in flight and writes
	// APPEND bodies to the socket without copying the segment (see
	// "Pipeline" in the package documentation). Another transport works,
	// but net/http then copies each body through a 32 KiB buffer.
	Transport http.RoundTripper
	// Credentials are used by uploads and calls that carry none.
	Credentials Credentials
	// SegmentSize is the preferred APPEND size; default 4 MiB. Files larger
	// than 1000 × SegmentSize get larger segments (see [PlanSegments]).
	SegmentSize int64
	// MaxSegmentSize caps segment size; default and upper bound
	// [MaxSegmentBytes] of the dialect (4 MiB on v2, 5,000,000 bytes on
	// v1.1). Files that would need larger segments, i.e. files larger than
	// [Client.MaxUploadBytes], are refused with [ErrSegmentTooLarge]
	// before INIT.
	MaxSegmentSize int64
	// Parallelism is the number of APPENDs in flight per upload; default 4.
	// Memory per upload is at most (Parallelism+1) segments.
	Parallelism int
	// MaxInFlight caps the segment buffers held across all uploads of the
	// Client, being filled or in flight; default 64. It bounds the
	// Client's buffer memory to MaxInFlight × segment size (256 MiB at the
	// defaults). A writer that needs a buffer when all are out waits, first
	// come, first served, for at most BufferWait (default 30s), then fails
	// with a *BusyError.
	MaxInFlight int
	BufferWait  time.Duration
	// SpillAfter is how long a segment may fill in memory while another
	// upload waits for a buffer; past it, the segment is spilled to a file
	// in SpillDir (default os.TempDir()) and fills there, so a slow caller
	// never pins a buffer another one needs. Default 500ms.
	SpillAfter time.Duration
	SpillDir   string
	// MaxAttempts bounds attempts per call (INIT, each APPEND, FINALIZE,
	// STATUS) on timeouts, connection errors, 408 and 5xx; default 5.
	MaxAttempts int
	// StallTimeout abandons an attempt (and retries it) when nothing has
	// moved for this long: no request byte acknowledged by X's side of the
	// connection, no response byte received, no step of the request made;
	// default 3 s. A slow connection that keeps moving is never cut,
	// however long its segment takes; a dead one costs at most StallTimeout
	// and an eighth. It also bounds how long X may think between the last
	// byte of a request and the first byte of its answer, which is well
	// under a second for every call this package makes.
	StallTimeout time.Duration
	// AttemptTimeout bounds one attempt however it progresses; default 10
	// minutes. It is only a backstop against a peer that trickles a byte
	// now and then, which StallTimeout alone would let hold a segment
	// buffer for ever.
	AttemptTimeout time.Duration
	// BackoffBase and BackoffMax shape the exponential backoff between
	// retries (full jitter: a uniform delay in [0, min(max, base·2ⁿ)]);
	// defaults 250 ms and 10 s.
	BackoffBase, BackoffMax time.Duration
	// RateLimitMaxWait is the longest a request waits for a rate-limit reset
	// (client-side hold or X's 429); beyond it the call fails with a
	// [*RateLimitError]. Default 1 minute; negative means never wait.
	RateLimitMaxWait time.Duration
	// Budgets, when set, shares the rate-limit budgets with the other
	// Clients on it (mediagw replicas); default: this Client's own.
	Budgets BudgetStore
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

	// fillers are the uploads holding a buffer being filled: what a writer
	// waiting for a buffer may spill (see fill.go).
	fillingMu sync.Mutex
	fillers   map[*Upload]struct{}

	// segCap is the segment size X's refusals taught (see replan.go); 0
	// until X refused a segment as too large.
	segCap atomic.Int64
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
	if xmax := MaxSegmentBytes(cfg.Dialect); cfg.MaxSegmentSize > xmax || cfg.SegmentSize > xmax {
		return nil, invalidf("segments of %d bytes exceed the %d bytes X takes in one APPEND on %s",
			max(cfg.MaxSegmentSize, cfg.SegmentSize), xmax, cfg.Dialect)
	}
	if cfg.MaxSegmentSize < cfg.SegmentSize {
		return nil, invalidf("MaxSegmentSize %d is below SegmentSize %d", cfg.MaxSegmentSize, cfg.SegmentSize)
	}
	c := &Client{
		cfg:     cfg,
		base:    u,
		d:       d,
		rt:      cfg.Transport,
		global:  semaphore.NewWeighted(int64(cfg.MaxInFlight)),
		log:     cfg.Logger,
		fillers: map[*Upload]struct{}{},
	}
	c.budgets.store = cfg.Budgets
	if c.rt == nil {
		c.rt = newTransport(cfg, nil)
	}
	if c.tel, err = newTelemetry(&cfg); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
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
	def(&cfg.SegmentSize, min(DefaultSegmentSize, MaxSegmentBytes(cfg.Dialect)))
	def(&cfg.MaxSegmentSize, MaxSegmentBytes(cfg.Dialect))
	defInt(&cfg.Parallelism, DefaultParallelism)
	defInt(&cfg.MaxInFlight, DefaultMaxInFlight)
	defDur(&cfg.BufferWait, DefaultBufferWait)
	defDur(&cfg.SpillAfter, DefaultSpillAfter)
	if cfg.SpillDir == "" {
		cfg.SpillDir = os.TempDir()
	}
	defInt(&cfg.MaxAttempts, DefaultMaxAttempts)
	defDur(&cfg.StallTimeout, DefaultStallTimeout)
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

// MaxUploadBytes returns the largest file this Client can upload:
// [MaxSegments] segments of Config.MaxSegmentSize, within X's 16 GiB. At
// the defaults it is [MaxUploadBytes] of the dialect. Begin refuses a
// larger TotalBytes with [ErrSegmentTooLarge] before anything is sent.
func (c *Client) MaxUploadBytes() int64 {
	return min(MaxSegments*c.cfg.MaxSegmentSize, maxTotalBytes)
}
