package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// maxResponseBody bounds how much of a response is read: X's media answers
// are a few hundred bytes; anything larger is an error page.
const maxResponseBody = 1 << 20

// response is one HTTP answer, fully read.
type response struct {
	status int
	header http.Header
	body   []byte
	authz  string // the Authorization value sent, to invalidate on 401
}

// attempt performs one HTTP attempt. It is the only place in the package
// that sends a request, so tracing and metrics belong here.
func (c *Client) attempt(ctx context.Context, creds Credentials, r *request) (*response, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + r.path
	u.RawPath = ""
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var body io.Reader = http.NoBody
	var bodies detachables
	defer bodies.detach()
	if r.body != nil {
		body = bodies.open(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, invalidf("building %s request: %v", r.cmd, err)
	}
	if r.body != nil {
		req.ContentLength = r.size
		req.GetBody = func() (io.ReadCloser, error) { return bodies.open(r.body), nil }
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "mediagw-upstream/1")
	if c.cfg.PropagateTraceContext {
		injectTraceparent(ctx, req.Header)
	}
	hc := http.Client{
		Transport: creds.authorize(c.rt),
		// The transport adds credentials to every request it sends, so a
		// redirect is followed only on X's own scheme and host: a token or a
		// segment never goes anywhere else.
		CheckRedirect: func(next *http.Request, via []*http.Request) error {
			if len(via) >= 3 || next.URL.Scheme != c.base.Scheme || next.URL.Host != c.base.Host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return nil, err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // let the connection be reused
	out := &response{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.Request != nil {
		out.authz = strings.TrimPrefix(resp.Request.Header.Get("Authorization"), "Bearer ")
	}
	return out, nil
}

// errBodyDetached is what a request body reads after its attempt ended.
var errBodyDetached = errors.New("upstream: request body read after its attempt ended")

// detachables are the bodies of one attempt. A body reads the caller's
// segment buffer in place; net/http may still be sending it after the
// answer arrived (X may answer before reading it all), so when the attempt
// ends every body is detached: later reads fail instead of touching a
// buffer that is about to go back to the pool and be refilled.
type detachables struct {
	mu     sync.Mutex
	bodies []*detachableBody
}

func (d *detachables) open(mk func() io.Reader) *detachableBody {
	b := &detachableBody{r: mk()}
	d.mu.Lock()
	d.bodies = append(d.bodies, b)
	d.mu.Unlock()
	return b
}

// detach returns once no body is being read and none will be again.
func (d *detachables) detach() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.bodies {
		b.mu.Lock()
		b.r = nil
		b.mu.Unlock()
	}
}

type detachableBody struct {
	mu sync.Mutex
	r  io.Reader // nil once detached
}

func (b *detachableBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.r == nil {
		return 0, errBodyDetached
	}
	return b.r.Read(p)
}

func (b *detachableBody) Close() error { return nil }

// TransportError reports that X could not be reached or did not answer in
// time, after all retries.
type TransportError struct {
	Command  string // INIT, APPEND, FINALIZE or STATUS
	Segment  int    // APPEND segment index, -1 otherwise
	Attempts int    // attempts made
	Err      error  // the last attempt's error
	msg      string // scrubbed text of Err
}

// Error implements error. The text is scrubbed of the request's secrets.
func (e *TransportError) Error() string {
	seg := ""
	if e.Segment >= 0 {
		seg = fmt.Sprintf(" segment %d", e.Segment)
	}
	return fmt.Sprintf("upstream: X %s%s failed after %d attempts: %s", e.Command, seg, e.Attempts, e.msg)
}

// Unwrap returns the last attempt's error.
func (e *TransportError) Unwrap() error { return e.Err }

// StatusCode returns 504 when the last attempt timed out, else 503.
func (e *TransportError) StatusCode() int {
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout
	}
	return http.StatusServiceUnavailable
}

// callOpts adjusts call for one command.
type callOpts struct {
	// alreadyDone recognises an answer meaning an earlier attempt of this
	// call was applied although its response was lost (FINALIZE retried).
	alreadyDone func(*APIError) bool
	// retries, when set, counts the attempts that are retried.
	retries *atomic.Int64
}

// call sends r with retries, rate-limit waits and backoff, and parses the
// 2xx answer. done reports that alreadyDone matched.
//
// The delay schedule is cenkalti/backoff's ExponentialBackOff (without its
// own randomization) with full jitter on top; the loop itself is not
// backoff.Retry because rate-limit waits, the one-time OAuth2 refresh on
// 401 and FINALIZE's "already finalized" must not count as failed attempts.
func (c *Client) call(ctx context.Context, creds Credentials, r *request, o callOpts) (m *Media, done bool, err error) {
	key := c.d.rateKey(r.cmd)
	bg := c.budgets.get(creds.identity(), key)
	bo := &backoff.ExponentialBackOff{
		InitialInterval: c.cfg.BackoffBase, Multiplier: 2, MaxInterval: c.cfg.BackoffMax,
		RandomizationFactor: 0, // full jitter is applied below
	}
	bo.Reset()
	timeout := c.cfg.AttemptTimeout + time.Duration(float64(r.size)/float64(c.cfg.MinThroughput)*float64(time.Second))
	var last error
	refreshed, limited, sent := false, 0, 0
	for attempts := 0; attempts < c.cfg.MaxAttempts; {
		held := time.Now()
		reset, ok, werr := bg.acquire(ctx, c.cfg.RateLimitMaxWait)
		c.tel.waited(ctx, key, time.Since(held))
		if werr != nil {
			return nil, false, werr
		}
		if !ok {
			limit, _ := bg.snapshot()
			return nil, false, &RateLimitError{Command: r.cmd.String(), Endpoint: key, Limit: limit, Reset: reset, Throttled: true}
		}
		attempts++
		actx, cancel := context.WithTimeout(ctx, timeout)
		actx, span := c.tel.startAttempt(actx, r, attempts, c.base.Host)
		resp, aerr := c.attempt(actx, creds, r)
		cancel()
		sent++
		outcome := c.classify(r.cmd, resp, aerr, creds, refreshed, o, sent)
		retry := ""
		if outcome.retry && ctx.Err() == nil {
			retry = outcome.reason
			if o.retries != nil {
				o.retries.Add(1)
			}
		}
		span.end(ctx, resp, aerr, retry)
		if ctx.Err() != nil {
			return nil, false, context.Cause(ctx)
		}
		if aerr != nil {
			if !outcome.retry {
				return nil, false, aerr
			}
			last = aerr
			c.logRetry(r, attempts, scrub(sanitizeTransportErr(aerr), creds.secrets()))
			if err := sleep(ctx, jitter(bo.NextBackOff())); err != nil {
				return nil, false, err
			}
			continue
		}
		bg.observe(resp.header)
		if outcome.ok {
			m, perr := c.d.parse(r.cmd, resp.status, resp.body)
			if perr != nil {
				return nil, false, fmt.Errorf("upstream: X %s: %s", r.cmd, scrub(perr.Error(), creds.secrets()))
			}
			return m, false, nil
		}
		ae := outcome.apiErr
		switch outcome.reason {
		case reasonRateLimited:
			reset := ae.Reset
			if reset.IsZero() || !reset.After(now()) {
				reset = now().Add(max(ae.RetryAfter, jitter(bo.NextBackOff())))
			}
			if ae.RetryAfter > 0 && now().Add(ae.RetryAfter).After(reset) {
				reset = now().Add(ae.RetryAfter)
			}
			bg.exhaust(reset)
			limited++
			attempts-- // a 429 is not a failed attempt: the request was not processed
			if limited > c.cfg.MaxAttempts || reset.Sub(now()) > c.cfg.RateLimitMaxWait {
				limit, _ := bg.snapshot()
				return nil, false, &RateLimitError{Command: r.cmd.String(), Endpoint: key, Limit: limit, Reset: reset, Err: ae}
			}
			c.logRetry(r, attempts, "429, waiting for reset")
			continue // acquire waits for the reset
		case reasonRefresh:
			refreshed = true
			attempts--
			continue
		case reasonAlreadyDone:
			return nil, true, nil
		case reasonServer:
			last = ae
			c.logRetry(r, attempts, ae.Error())
			d := jitter(bo.NextBackOff())
			if ae.RetryAfter > 0 && ae.RetryAfter <= c.cfg.BackoffMax {
				d = max(d, ae.RetryAfter)
			}
			if err := sleep(ctx, d); err != nil {
				return nil, false, err
			}
			continue
		default:
			return nil, false, ae
		}
	}
	var ae *APIError
	if errors.As(last, &ae) {
		return nil, false, fmt.Errorf("upstream: X %s gave up after %d attempts: %w", r.cmd, c.cfg.MaxAttempts, ae)
	}
	return nil, false, &TransportError{Command: r.cmd.String(), Segment: r.segment, Attempts: c.cfg.MaxAttempts,
		Err: last, msg: scrub(sanitizeTransportErr(last), creds.secrets())}
}

// Reasons an attempt is retried (the x.retry_reason attribute), and the
// outcomes that are not retries.
const (
	reasonTimeout     = "timeout"
	reasonConnection  = "connection"
	reasonRateLimited = "rate_limited"
	reasonRefresh     = "unauthorized_refresh"
	reasonServer      = "server_error"
	reasonAlreadyDone = "already_done"
)

// outcome is what one attempt's answer means for the call.
type outcome struct {
	ok     bool   // 2xx: parse the answer
	retry  bool   // send again (after a wait or backoff)
	reason string // why, for retries and the special answers
	apiErr *APIError
}

// classify decides what an attempt's answer means, before anything acts on
// it, so that the attempt's span can say whether it is retried.
func (c *Client) classify(cmd command, resp *response, err error, creds Credentials, refreshed bool, o callOpts, sent int) outcome {
	if err != nil {
		if !retryableErr(err) {
			return outcome{}
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return outcome{retry: true, reason: reasonTimeout}
		}
		return outcome{retry: true, reason: reasonConnection}
	}
	if resp.status >= 200 && resp.status < 300 {
		return outcome{ok: true}
	}
	ae := parseAPIError(resp.status, resp.header, resp.body, now())
	ae.Command = cmd.String()
	scrubAPIError(ae, creds.secrets())
	switch {
	case resp.status == http.StatusTooManyRequests:
		return outcome{retry: true, reason: reasonRateLimited, apiErr: ae}
	case resp.status == http.StatusUnauthorized && !refreshed && creds.invalidate(resp.authz):
		return outcome{retry: true, reason: reasonRefresh, apiErr: ae}
	case o.alreadyDone != nil && sent > 1 && o.alreadyDone(ae):
		return outcome{reason: reasonAlreadyDone, apiErr: ae}
	case resp.status == http.StatusRequestTimeout || resp.status >= 500:
		return outcome{retry: true, reason: reasonServer, apiErr: ae}
	}
	return outcome{apiErr: ae}
}

// retryableErr classifies an error from attempt (no HTTP answer): timeouts
// and connection errors are retried; bad parameters and refused token
// refreshes are not.
func retryableErr(err error) bool {
	var tre *TokenRefreshError
	switch {
	case errors.Is(err, ErrInvalidParams):
		return false
	case errors.As(err, &tre):
		return tre.StatusCode() >= 500
	}
	return true
}

// jitter returns a uniform delay in [0, d] ("full jitter").
func jitter(d time.Duration) time.Duration {
	if d <= 0 || d == backoff.Stop {
		return 0
	}
	return rand.N(d + 1)
}

func (c *Client) logRetry(r *request, attempt int, why string) {
	c.log.Debug("upstream: retrying", slog.String("command", r.cmd.String()),
		slog.Int("segment", r.segment), slog.Int("attempt", attempt), slog.String("reason", why))
}

// sanitizeTransportErr returns a short printable text for a transport error.
func sanitizeTransportErr(err error) string {
	if err == nil {
		return "unknown error"
	}
	return clean(err.Error())
}

// scrub replaces every secret in s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

func scrubAPIError(e *APIError, secrets []string) {
	e.Title = scrub(e.Title, secrets)
	e.Detail = scrub(e.Detail, secrets)
	e.Type = scrub(e.Type, secrets)
}
