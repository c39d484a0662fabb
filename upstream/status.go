package upstream

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// pollTimeout is the type of ErrPollDeadline.
type pollTimeout struct{}

// Error implements error.
func (pollTimeout) Error() string {
	return "upstream: media processing did not finish before the poll deadline"
}

// StatusCode returns 504: X did not finish in the time allowed.
func (pollTimeout) StatusCode() int { return http.StatusGatewayTimeout }

// Timeout reports true, like net.Error.
func (pollTimeout) Timeout() bool { return true }

// ErrPollDeadline is returned (wrapped) by [Client.Wait] when processing is
// still running at Config.PollDeadline. The media may still succeed later.
var ErrPollDeadline error = pollTimeout{}

// Status sends one STATUS for mediaID (a GET, as X requires) and returns the
// media with its processing info. creds nil means Config.Credentials. For
// media that never needed processing X answers 400 "Not found".
func (c *Client) Status(ctx context.Context, creds Credentials, mediaID string) (*Media, error) {
	creds, err := c.creds(creds)
	if err != nil {
		return nil, err
	}
	if !validMediaID(mediaID) {
		return nil, invalidf("media id %q is not numeric", truncate(mediaID, 32))
	}
	return c.status(ctx, creds, mediaID)
}

func (c *Client) status(ctx context.Context, creds Credentials, id string) (*Media, error) {
	r := c.d.statusReq(id)
	r.mediaID = id
	m, _, err := c.call(ctx, creds, r, callOpts{})
	if err != nil {
		return nil, err
	}
	if m.ID == "" {
		m.ID = id
	}
	return m, nil
}

// Wait polls STATUS until processing ends and returns the final media.
//
//   - first is the Processing FINALIZE returned. nil means the media is
//     ready: Wait returns at once and sends no STATUS.
//   - The delay before each STATUS is X's check_after_secs (PollInterval,
//     1 s by default, when absent or 0), capped at PollMaxDelay, plus up to
//     10% random jitter so many waiters do not poll in lockstep.
//   - States other than pending, in_progress, succeeded and failed are
//     treated as in progress.
//   - A processing_info.error ends the wait with a [*ProcessingError] even
//     while the state is still in_progress: X has been seen reporting an
//     error at 99% without ever moving to failed, and a caller waiting for
//     "failed" would poll forever.
//   - The whole wait is bounded by Config.PollDeadline; past it Wait
//     returns the last media and an error wrapping [ErrPollDeadline].
//
// onUpdate, if not nil, receives every STATUS answer. creds nil means
// Config.Credentials.
func (c *Client) Wait(ctx context.Context, creds Credentials, mediaID string, first *Processing, onUpdate func(*Media)) (*Media, error) {
	creds, err := c.creds(creds)
	if err != nil {
		return nil, err
	}
	if !validMediaID(mediaID) {
		return nil, invalidf("media id %q is not numeric", truncate(mediaID, 32))
	}
	m := &Media{ID: mediaID, Processing: first}
	if done, err := processingOutcome(m); done {
		return m, err
	}
	wctx, cancel := context.WithTimeoutCause(ctx, c.cfg.PollDeadline, ErrPollDeadline)
	defer cancel()
	for {
		if err := sleep(wctx, c.pollDelay(m.Processing)); err != nil {
			return m, c.waitErr(ctx, wctx, m)
		}
		next, err := c.status(wctx, creds, mediaID)
		if err != nil {
			if wctx.Err() != nil {
				return m, c.waitErr(ctx, wctx, m)
			}
			return m, fmt.Errorf("upstream: waiting for media %s: %w", mediaID, err)
		}
		m = next
		if onUpdate != nil {
			onUpdate(m)
		}
		if done, err := processingOutcome(m); done {
			return m, err
		}
	}
}

// waitErr explains why polling stopped early.
func (c *Client) waitErr(parent, wctx context.Context, m *Media) error {
	if parent.Err() != nil {
		return context.Cause(parent)
	}
	state := "unknown"
	if m.Processing != nil {
		state = m.Processing.State
	}
	return fmt.Errorf("%w: media %s still %q after %s", context.Cause(wctx), m.ID, truncate(state, 32), c.cfg.PollDeadline)
}

// processingOutcome reports whether polling is over and with what result.
func processingOutcome(m *Media) (bool, error) {
	p := m.Processing
	switch {
	case p == nil || p.State == StateSucceeded && p.Error == nil:
		return true, nil
	case p.Error != nil:
		return true, p.Error
	case p.State == StateFailed:
		return true, &ProcessingError{Name: "failed", Message: "X reported state failed without details"}
	}
	return false, nil
}

// pollDelay turns check_after_secs into the next delay.
func (c *Client) pollDelay(p *Processing) time.Duration {
	d := c.cfg.PollInterval
	if p != nil && p.CheckAfterSecs > 0 {
		d = time.Duration(p.CheckAfterSecs) * time.Second
	}
	d = min(d, c.cfg.PollMaxDelay)
	return d + rand.N(d/10+1)
}
