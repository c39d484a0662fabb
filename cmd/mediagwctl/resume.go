package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cenkalti/backoff/v5"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// errStalled ends an attempt whose bytes stopped moving.
var errStalled = errors.New("sending stalled")

// uploader uploads files through a client, resuming interrupted uploads
// from the bytes mediagw says X has committed.
type uploader struct {
	c       client
	retries int
	stall   time.Duration
	account string
	// notify reports a retry (a line above the progress bars, or on
	// stderr).
	notify func(format string, args ...any)
	// backoff returns the delays between retries.
	backoff func() backoff.BackOff
	// actions adds the metadata and subtitles to every start (media.go).
	actions *uploadActions
}

// progress is told where an attempt starts and of every chunk sent.
type progress interface {
	at(offset int64)
	add(n int, took time.Duration)
}

func defaultBackoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 500 * time.Millisecond
	b.Multiplier = 1.6
	b.MaxInterval = 30 * time.Second
	return b
}

// upload uploads m and returns X's answer. It first asks mediagw's ledger
// about m's key: a completed upload is answered without sending a byte,
// an interrupted one resumes. After a broken connection or Unavailable it
// resumes from committed_bytes with backoff, giving up after u.retries
// failures in a row without progress.
func (u *uploader) upload(ctx context.Context, m *mediaFile, p progress) (*mediagwv1.UploadResponse, error) {
	offset := int64(0)
	if st, err := u.c.GetUpload(ctx, m.key); err == nil {
		resp, next, err := fromLedger(m, st)
		if resp != nil {
			p.at(m.size)
		}
		if resp != nil || err != nil {
			return resp, err
		}
		offset = next
	}
	bo := u.backoff()
	best, failures := offset, 0
	// takeover: another stream still drives the key (its connection may be
	// half-open): the next attempt resumes, which takes the upload over.
	takeover := false
	for {
		resp, err := u.attempt(ctx, m, offset, offset > 0 || takeover, p)
		takeover = status.Code(err) == codes.Aborted
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait, ok := retryable(err)
		if !ok {
			return nil, err
		}
		next := offset
		if us, ok := uploadStateOf(err); ok {
			next = us.GetCommittedBytes()
		} else if st, lerr := u.settled(ctx, m.key); lerr == nil {
			resp, n, ferr := fromLedger(m, st)
			if resp != nil || ferr != nil {
				return resp, ferr
			}
			next = n
		} else if c := codeOf(lerr); c == codes.NotFound || c == codes.Unimplemented {
			// mediagw never recorded the key (or keeps no ledger): start over.
			next = 0
		}
		if next < 0 || next > m.size {
			return nil, fmt.Errorf("mediagw says %d bytes are committed, but the file has %d (%s)", next, m.size, describe(err))
		}
		if next > best {
			best, failures = next, 0
			bo.Reset()
		}
		failures++
		if failures > u.retries {
			return nil, fmt.Errorf("gave up after %d retries in a row without progress (%s of %s at X), the last: %s; "+
				"run the same command again to resume (idempotency key %s)",
				u.retries, humanBytes(best), humanBytes(m.size), describe(err), m.key)
		}
		if status.Code(err) != codes.FailedPrecondition {
			// A resume_offset mediagw corrected is resumed at once.
			wait = max(wait, bo.NextBackOff())
		}
		u.notify("%s: %s; resuming at %s in %s (retry %d of %d)", m.path, describe(err),
			humanBytes(next), wait.Round(time.Millisecond), failures, u.retries)
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		offset = next
	}
}

// settleWait bounds how long a failed attempt waits for mediagw to see
// the broken stream too and record where the upload stands.
const settleWait = 15 * time.Second

// settled asks mediagw's ledger about key until the upload is no longer
// driven by a stream (the one that just broke is still being settled
// there: its APPENDs in flight finishing), or settleWait passed.
func (u *uploader) settled(ctx context.Context, key string) (*mediagwv1.UploadState, error) {
	deadline := time.Now().Add(settleWait)
	for {
		st, err := u.c.GetUpload(ctx, key)
		if err != nil || time.Now().After(deadline) {
			return st, err
		}
		switch st.GetPhase() {
		case mediagwv1.UploadPhase_UPLOAD_PHASE_RECEIVING, mediagwv1.UploadPhase_UPLOAD_PHASE_FINALIZING:
		default:
			return st, nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// fromLedger decides from mediagw's record of m's key: a completed
// upload's response, a failed upload's error, or where to resume.
func fromLedger(m *mediaFile, st *mediagwv1.UploadState) (*mediagwv1.UploadResponse, int64, error) {
	switch st.GetPhase() {
	case mediagwv1.UploadPhase_UPLOAD_PHASE_COMPLETED:
		if st.GetResponse().GetMediaId() == "" {
			return nil, 0, fmt.Errorf("mediagw says upload %s completed but has no media id", m.key)
		}
		return st.GetResponse(), 0, nil
	case mediagwv1.UploadPhase_UPLOAD_PHASE_FAILED:
		return nil, 0, fmt.Errorf("an earlier upload of this file (idempotency key %s) failed: %s: %s; "+
			"a new attempt needs another key (--idempotency-key)", m.key, st.GetError().GetCode(), st.GetError().GetMessage())
	}
	return nil, st.GetCommittedBytes(), nil
}

// attempt streams m from offset once. An attempt whose sending makes no
// progress for u.stall is ended as Unavailable.
func (u *uploader) attempt(ctx context.Context, m *mediaFile, offset int64, resume bool, p progress) (*mediagwv1.UploadResponse, error) {
	f, err := os.Open(m.path)
	if err != nil {
		return nil, &localError{err}
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, &localError{err}
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(u.stall, func() { cancel(errStalled) })
	defer watchdog.Stop()
	remaining, last := m.size-offset, time.Now()
	if remaining == 0 {
		watchdog.Stop() // nothing to send: only FINALIZE is left
	}
	p.at(offset)
	sent := func(n int) {
		now := time.Now()
		p.add(n, now.Sub(last))
		last = now
		if remaining -= int64(n); remaining <= 0 {
			watchdog.Stop() // all sent: FINALIZE may take its time
		} else {
			watchdog.Reset(u.stall)
		}
	}
	start := &mediagwv1.UploadStart{
		MediaType:      m.mediaType,
		MediaCategory:  m.category,
		TotalBytes:     m.size,
		Sha256:         m.sha256,
		IdempotencyKey: m.key,
		Account:        u.account,
	}
	u.actions.decorate(start) // media.go
	if resume {
		// A resume continues the key's upload (and takes it over from a
		// stream that still drives it); a plain start of a key that was
		// interrupted at 0 continues it too.
		start.ResumeOffset = &offset
	}
	resp, err := u.c.Upload(actx, start, io.LimitReader(f, m.size-offset), sent)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errStalled) {
		return nil, status.Errorf(codes.Unavailable, "no bytes could be sent for %s", u.stall)
	}
	return resp, err
}

// retryable says whether err may be retried, and the least wait before.
func retryable(err error) (time.Duration, bool) {
	var le *localError
	if errors.As(err, &le) {
		return 0, false
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unavailable, codes.Aborted, codes.DeadlineExceeded:
		return 0, true
	case codes.FailedPrecondition:
		// A resume_offset that is not the committed length: resume there.
		_, ok := uploadStateOf(err)
		return 0, ok
	case codes.ResourceExhausted:
		// X's rate limit (with RetryInfo); without it, a size limit.
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				return ri.GetRetryDelay().AsDuration(), true
			}
		}
	}
	return 0, false
}

// watch follows the processing of id until a terminal state, calling
// each for every state, and reconnects (with backoff) when the stream
// breaks.
func (u *uploader) watch(ctx context.Context, id string, each func(*mediagwv1.ProcessingStatus)) (*mediagwv1.ProcessingStatus, error) {
	bo := u.backoff()
	var last *mediagwv1.ProcessingStatus
	failures := 0
	for {
		err := u.c.WatchStatus(ctx, id, func(st *mediagwv1.ProcessingStatus) {
			last, failures = st, 0
			bo.Reset()
			each(st)
		})
		if terminal(last) {
			return last, nil
		}
		if err == nil {
			err = status.Error(codes.Unavailable, "the watch ended before processing did")
		}
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
		wait, ok := retryable(err)
		if !ok {
			return last, err
		}
		if failures++; failures > u.retries {
			return last, fmt.Errorf("gave up watching %s after %d retries, the last: %s", id, u.retries, describe(err))
		}
		wait = max(wait, bo.NextBackOff())
		u.notify("watch %s: %s; again in %s (retry %d of %d)", id, describe(err), wait.Round(time.Millisecond), failures, u.retries)
		if err := sleep(ctx, wait); err != nil {
			return last, err
		}
	}
}

func terminal(st *mediagwv1.ProcessingStatus) bool {
	s := st.GetState()
	return s == mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED || s == mediagwv1.ProcessingState_PROCESSING_STATE_FAILED
}

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

// describe renders an error for a person: a status error as its code and
// message, any other error (which may wrap one) as its text.
func describe(err error) string {
	if se, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		st := se.GRPCStatus()
		return st.Code().String() + ": " + st.Message()
	}
	return err.Error()
}

// humanBytes renders n in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
