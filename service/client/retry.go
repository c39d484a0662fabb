package client

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// RetryPolicy says how Upload and Watch retry what IsRetryable allows.
// The wait before each retry is a capped exponential backoff with jitter
// (cenkalti/backoff), and never shorter than the RetryAfter mediagw asked
// for.
type RetryPolicy struct {
	// MaxRetries is how many failures in a row without progress end the
	// call (progress, more bytes committed at X, resets the count); 0
	// means no retry at all.
	MaxRetries int
	// MaxElapsed bounds the whole call, attempts and waits together; 0
	// means no bound but MaxRetries and the context.
	MaxElapsed time.Duration
	// Initial and Max are the first and the largest backoff.
	Initial, Max time.Duration
	// Multiplier grows the backoff after each failure (at least 1).
	Multiplier float64
	// Jitter is the backoff's randomization factor, 0 to 1.
	Jitter float64
}

// DefaultRetryPolicy is 10 retries in a row without progress within 15
// minutes, waiting 0.5 s growing ×1.6 up to 30 s, ±50 %.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxRetries: 10, MaxElapsed: 15 * time.Minute, Initial: 500 * time.Millisecond,
		Max: 30 * time.Second, Multiplier: 1.6, Jitter: 0.5}
}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxRetries < 0:
		return errors.New("RetryPolicy: MaxRetries must be 0 or more")
	case p.MaxElapsed < 0 || p.Initial < 0 || p.Max < 0:
		return errors.New("RetryPolicy: durations must not be negative")
	case p.Multiplier != 0 && p.Multiplier < 1:
		return errors.New("RetryPolicy: Multiplier must be at least 1")
	case p.Jitter < 0 || p.Jitter > 1:
		return errors.New("RetryPolicy: Jitter must be between 0 and 1")
	}
	return nil
}

func (p RetryPolicy) backoff() backoff.BackOff {
	if p.Initial == 0 {
		return &backoff.ZeroBackOff{}
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.Initial
	b.MaxInterval = max(p.Max, p.Initial)
	b.Multiplier = max(p.Multiplier, 1)
	b.RandomizationFactor = p.Jitter
	b.Reset()
	return b
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
