package client

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// Watch follows X's processing of mediaID until a terminal state
// (SUCCEEDED or FAILED), calling each (if not nil) for every state, and
// returns the last state. A stream that breaks, or ends before a terminal
// state, is reconnected with the RetryPolicy's backoff; permanent errors
// (NotFound, Unauthenticated, …) end it at once.
func (c *Client) Watch(ctx context.Context, mediaID string, each func(*mediagwv1.ProcessingStatus)) (*mediagwv1.ProcessingStatus, error) {
	bo := c.retry.backoff()
	started := time.Now()
	var last *mediagwv1.ProcessingStatus
	failures, attempts := 0, 0
	for {
		attempts++
		err := c.t.watch(ctx, mediaID, func(st *mediagwv1.ProcessingStatus) {
			last, failures = st, 0
			bo.Reset()
			if each != nil {
				each(st)
			}
		})
		if Terminal(last) {
			return last, nil
		}
		if ctx.Err() != nil {
			return last, convert(ctx.Err())
		}
		var e *Error
		if err == nil {
			e = &Error{Code: codes.Unavailable, Message: "the watch ended before processing did"}
		} else {
			e = convert(err)
		}
		e.Attempts = attempts
		if !e.retryable() {
			return last, e
		}
		failures++
		wait := max(e.RetryAfter, bo.NextBackOff())
		if failures > c.retry.MaxRetries || (c.retry.MaxElapsed > 0 && time.Since(started)+wait > c.retry.MaxElapsed) {
			return last, &Error{Code: e.Code, Reason: ReasonGaveUp, Attempts: attempts, err: e,
				Message: fmt.Sprintf("gave up watching %s after %d retries, the last: %s", mediaID, failures-1, e)}
		}
		if c.notify != nil {
			c.notify(Retry{Op: "watch", Key: mediaID, Err: e, Wait: wait, Failures: failures})
		}
		if err := sleep(ctx, wait); err != nil {
			return last, convert(err)
		}
	}
}

// ProcessingError is WaitUsable's error when X could not process the
// media.
type ProcessingError struct {
	Status *mediagwv1.ProcessingStatus
}

func (e *ProcessingError) Error() string {
	pe := e.Status.GetError()
	return fmt.Sprintf("X could not process media %s: %s (code %d): %s", e.Status.GetMediaId(), pe.GetName(), pe.GetCode(), pe.GetMessage())
}

// WaitUsable waits until X has processed mediaID and returns its final
// state; a processing failure is a *ProcessingError.
func (c *Client) WaitUsable(ctx context.Context, mediaID string) (*mediagwv1.ProcessingStatus, error) {
	st, err := c.Watch(ctx, mediaID, nil)
	if err != nil {
		return st, err
	}
	if st.GetState() == mediagwv1.ProcessingState_PROCESSING_STATE_FAILED {
		return st, &ProcessingError{Status: st}
	}
	return st, nil
}

// Terminal says whether st is a final processing state.
func Terminal(st *mediagwv1.ProcessingStatus) bool {
	s := st.GetState()
	return s == mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED || s == mediagwv1.ProcessingState_PROCESSING_STATE_FAILED
}
