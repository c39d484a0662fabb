package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
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
// that sends a request, so tracing and metrics belong here. A watchdog
// ends the attempt with a *stallError when nothing moves for
// Config.StallTimeout.
//
// cancel ends ctx; the watchdog calls it on a stall.
func (c *Client) attempt(ctx context.Context, cancel context.CancelFunc, creds Credentials, r *request, st *sendState) (*response, error) {
	wd := watch(c.cfg.StallTimeout, cancel)
	ctx = httptrace.WithClientTrace(ctx, wd.trace())
	ctx = httptrace.WithClientTrace(ctx, st.trace())
	resp, err := c.exchange(ctx, creds, r, wd)
	if wd.stop() && err != nil {
		return nil, &stallError{after: c.cfg.StallTimeout, cause: err}
	}
	return resp, err
}

// exchange sends r and reads the answer.
func (c *Client) exchange(ctx context.Context, creds Credentials, r *request, wd *watchdog) (*response, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + r.path
	u.RawPath = ""
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var rb io.Reader = http.NoBody
	var bodies detachables
	defer bodies.detach()
	if r.body != nil {
		rb = bodies.open(r.body, wd.moved)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), rb)
	if err != nil {
		return nil, invalidf("the %s request could not be built", r.cmd)
	}
	if r.body != nil {
		req.ContentLength = r.size
		req.GetBody = func() (io.ReadCloser, error) { return bodies.open(r.body, wd.moved), nil }
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
	b, err := io.ReadAll(io.LimitReader(wd.reader(resp.Body), maxResponseBody))
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

// callOpts adjusts call for one command.
type callOpts struct {
	// alreadyDone recognises an answer meaning an earlier attempt of this
	// call was applied although its response was lost (FINALIZE retried).
	alreadyDone func(*APIError) bool
	// retries, when set, counts the attempts that are retried.
	retries *atomic.Int64
	// once marks a call X does not document as idempotent: an attempt is
	// retried only when it cannot have been applied (see unapplied), and
	// an answer that leaves the outcome open is returned with MaybeApplied.
	once bool
	// body, when set, receives the 2xx body instead of parsing it as
	// Media; call then returns an empty Media.
	body *[]byte
}

// sendState follows one attempt through net/http's trace hooks, to tell
// an attempt that never reached X from one that may have been applied.
type sendState struct {
	gotConn, wrote atomic.Bool
}

func (s *sendState) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { s.gotConn.Store(true) },
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				s.wrote.Store(true)
			}
		},
	}
}

// unapplied reports that an attempt which ended in err cannot have been
// applied by X: the connection was never made (refused, no route, name
// not resolved: a dial error), or it was made and the request was not
// written whole, so X never had a complete body to act on. Anything else
// (a reset, a timeout or a stall after the request was written) may have
// been applied with only the answer lost.
func (s *sendState) unapplied(err error) bool {
	var oe *net.OpError
	var dns *net.DNSError
	switch {
	case errors.As(err, &oe) && oe.Op == "dial", errors.As(err, &dns), errors.Is(err, syscall.ECONNREFUSED):
		return true
	}
	// The trace hooks fire only on net/http's transport: without GotConn
	// nothing is known, and the attempt counts as possibly applied.
	return s.gotConn.Load() && !s.wrote.Load()
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
		actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		actx, span := c.tel.startAttempt(actx, r, attempts, c.base.Host)
		var st sendState
		resp, aerr := c.attempt(actx, cancel, creds, r, &st)
		cancel()
		sent++
		outcome := c.classify(r, resp, aerr, creds, refreshed, o, sent, &st)
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
			if outcome.maybeApplied {
				return nil, false, &TransportError{Command: r.cmd.String(), Segment: r.segment, MediaID: r.mediaID,
					Attempts: attempts, Err: aerr, MaybeApplied: true,
					msg: scrub(sanitizeTransportErr(aerr), creds.secrets())}
			}
			if !outcome.retry {
				return nil, false, withoutURL(aerr)
			}
			last = aerr
			c.logRetry(r, attempts, scrub(sanitizeTransportErr(aerr), creds.secrets()))
			if err := sleep(ctx, jitter(bo.NextBackOff())); err != nil {
				return nil, false, err
			}
			continue
		}
		bg.observe(resp.header)
		if outcome.ok && o.body != nil {
			*o.body = resp.body
			return &Media{}, false, nil
		}
		if outcome.ok {
			m, perr := c.d.parse(r.cmd, resp.status, resp.body)
			if perr != nil {
				return nil, false, fmt.Errorf("X answered %s with HTTP %d and a body that could not be read: %s",
					what(r.cmd.String(), r.segment), resp.status, scrub(perr.Error(), creds.secrets()))
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
			ae.MaybeApplied = outcome.maybeApplied
			if ae.MaybeApplied {
				ae.Attempts = attempts
			}
			return nil, false, ae
		}
	}
	var ae *APIError
	if errors.As(last, &ae) {
		ae.Attempts = c.cfg.MaxAttempts
		return nil, false, ae
	}
	return nil, false, &TransportError{Command: r.cmd.String(), Segment: r.segment, MediaID: r.mediaID,
		Attempts: c.cfg.MaxAttempts, Err: last, msg: scrub(sanitizeTransportErr(last), creds.secrets())}
}

// Reasons an attempt is retried (the x.retry_reason attribute), and the
// outcomes that are not retries.
const (
	reasonTimeout     = "timeout"
	reasonStalled     = "stalled"
	reasonConnection  = "connection"
	reasonRateLimited = "rate_limited"
	reasonRefresh     = "unauthorized_refresh"
	reasonServer      = "server_error"
	reasonAlreadyDone = "already_done"
	// reasonMaybeApplied ends a call made once (callOpts.once) whose
	// attempt may have been applied: it is not retried.
	reasonMaybeApplied = "maybe_applied"
)

// outcome is what one attempt's answer means for the call.
type outcome struct {
	ok     bool   // 2xx: parse the answer
	retry  bool   // send again (after a wait or backoff)
	reason string // why, for retries and the special answers
	apiErr *APIError
	// maybeApplied: a call made once got an answer (or none) that leaves
	// open whether X applied it; it is not retried.
	maybeApplied bool
}

// classify decides what an attempt's answer means, before anything acts on
// it, so that the attempt's span can say whether it is retried.
func (c *Client) classify(r *request, resp *response, err error, creds Credentials, refreshed bool, o callOpts, sent int, ss *sendState) outcome {
	if err != nil {
		var st *stallError
		switch {
		case !retryableErr(err):
			return outcome{}
		case o.once && !ss.unapplied(err):
			return outcome{reason: reasonMaybeApplied, maybeApplied: true}
		case errors.As(err, &st):
			return outcome{retry: true, reason: reasonStalled}
		case errors.Is(err, context.DeadlineExceeded):
			return outcome{retry: true, reason: reasonTimeout}
		}
		return outcome{retry: true, reason: reasonConnection}
	}
	if resp.status >= 200 && resp.status < 300 {
		return outcome{ok: true}
	}
	ae := parseAPIError(resp.status, resp.header, resp.body, now())
	ae.Command, ae.Segment, ae.MediaID = r.cmd.String(), r.segment, r.mediaID
	scrubAPIError(ae, creds.secrets())
	switch {
	case resp.status == http.StatusTooManyRequests:
		return outcome{retry: true, reason: reasonRateLimited, apiErr: ae}
	case resp.status == http.StatusUnauthorized && !refreshed && creds.invalidate(resp.authz):
		return outcome{retry: true, reason: reasonRefresh, apiErr: ae}
	case o.alreadyDone != nil && sent > 1 && o.alreadyDone(ae):
		return outcome{reason: reasonAlreadyDone, apiErr: ae}
	case o.once && (resp.status == http.StatusRequestTimeout || resp.status >= 500):
		// X does not document that a 5xx (503 included) means the call was
		// not processed, and X's edge, like the emulator's faults, can
		// answer one after the work is done.
		return outcome{reason: reasonMaybeApplied, apiErr: ae, maybeApplied: true}
	case resp.status == http.StatusRequestTimeout || resp.status >= 500:
		return outcome{retry: true, reason: reasonServer, apiErr: ae}
	}
	return outcome{apiErr: ae}
}

// retryableErr classifies an error from attempt (no HTTP answer): timeouts
// and connection errors are retried; bad parameters and refused token
// refreshes are not.
func retryableErr(err error) bool {
	var (
		tre *TokenRefreshError
		rae *ReauthError
	)
	switch {
	case errors.Is(err, ErrInvalidParams), errors.As(err, &rae):
		return false
	case errors.As(err, &tre):
		return tre.StatusCode() >= 500
	}
	return true
}

// withoutURL returns the error an http.Client wrapped in a *url.Error
// when it is one of this package's (a refused refresh, an account that
// must be authorized again, bad credentials): the caller reads its one
// sentence, not the request's method and URL.
func withoutURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	var (
		tre *TokenRefreshError
		rae *ReauthError
		se  *StoreError
	)
	if errors.As(ue.Err, &tre) || errors.As(ue.Err, &rae) || errors.As(ue.Err, &se) || errors.Is(ue.Err, ErrInvalidParams) {
		return ue.Err
	}
	return err
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
