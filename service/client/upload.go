package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// UploadOptions describe one upload. Only MediaType may be needed: it is
// detected from the first bytes of a File or ReaderAt when empty.
type UploadOptions struct {
	// MediaType is the MIME type, one of X's (video/mp4, image/png, …).
	MediaType string
	// Category is X's use case; unspecified derives it from MediaType.
	Category mediagwv1.MediaCategory
	// Account names the configured X account; empty is the caller's
	// default.
	Account string
	// AdditionalOwners are X user ids that may also use the media.
	AdditionalOwners []string
	// Shared marks media other users may use in direct messages.
	Shared bool
	// SHA256 is the hex SHA-256 of the media, if known; for a File or
	// ReaderAt it is computed when empty. mediagw checks it before
	// FINALIZE.
	SHA256 string
	// IdempotencyKey names the upload for resumes and replays. Empty: for a
	// File or ReaderAt a key is derived (see DeriveKey); a Reader gets
	// none.
	IdempotencyKey string
	// Metadata and Subtitles are applied by mediagw once the media is
	// usable, exactly once (they need an idempotency key); see
	// docs/media-actions.md. A derived key does not cover them: give a key
	// of their own when the same bytes may be sent with other ones.
	Metadata  *mediagwv1.MediaMetadata
	Subtitles []*mediagwv1.SubtitlesTrack
	// NoIdempotencyKey sends no key even for a File or ReaderAt: the
	// upload is then all or nothing (for a mediagw run with --ledger off).
	NoIdempotencyKey bool
	// NoSHA256 skips hashing a plain Reader as it is sent (Result.SHA256
	// stays empty): SHA-256 cost the caller about 0.7 CPU s/GiB in the
	// bench (docs/performance.md), about half as much as the rest of a
	// gRPC upload.
	NoSHA256 bool
	// ResumeOffset continues an interrupted upload of IdempotencyKey from
	// a Reader that yields the media from this offset on (see Reader).
	// Resumable sources find the offset themselves.
	ResumeOffset int64
	// OnRetry, when set, is called before every retry of this upload
	// (after the client's WithRetryNotify).
	OnRetry func(Retry)
	// Progress, when set, is called as the upload goes (from the calling
	// goroutine of the transport; keep it quick). ProgressChan adapts a
	// channel.
	Progress func(Progress)
}

// Progress is where an upload stands.
type Progress struct {
	// Sent is the offset up to which bytes were handed to the transport in
	// the current attempt (it moves back to the resume point after a
	// resume).
	Sent int64
	// Committed is the length of the prefix X holds, as far as mediagw
	// last said (at a resume, and Total once done).
	Committed int64
	// Total is the media's size (-1 while unknown).
	Total int64
	// Resumes counts the attempts after the first.
	Resumes int
	// Done is set once, when X accepted the media.
	Done bool
}

// ProgressChan returns a Progress callback that sends to ch without
// blocking: an update the channel has no room for is dropped, except the
// final one, which is always delivered.
func ProgressChan(ch chan<- Progress) func(Progress) {
	return func(p Progress) {
		if p.Done {
			ch <- p
			return
		}
		select {
		case ch <- p:
		default:
		}
	}
}

// Result is the outcome of an upload X accepted.
type Result struct {
	// Response is mediagw's answer: media id and key, size, expiry and
	// the first processing state.
	Response *mediagwv1.UploadResponse
	// MediaID is Response.MediaId.
	MediaID string
	// IdempotencyKey is the key used (empty: none).
	IdempotencyKey string
	// SHA256 is the hex SHA-256 of the media (declared, or computed as it
	// was read).
	SHA256 string
	// Size is the media's size.
	Size int64
	// Resumes counts the attempts after the first.
	Resumes int
	// Replayed says the ledger answered a completed upload of the key
	// without a byte sent.
	Replayed bool
}

// Usable says whether X's first processing state already lets the media
// be used (images, subtitles); otherwise use WaitUsable.
func (r *Result) Usable() bool {
	return r.Response.GetProcessing().GetState() == mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED
}

// errStalled ends an attempt whose bytes stopped moving.
var errStalled = errors.New("sending stalled")

// settleWait bounds how long a failed attempt waits for mediagw to see
// the broken stream too and record where the upload stands.
const settleWait = 15 * time.Second

// Upload uploads src to X through mediagw and returns X's answer once it
// accepted the whole media (FINALIZE). With an idempotency key (derived
// for File and ReaderAt) it first asks mediagw's ledger: a completed
// upload is answered without sending a byte, an interrupted one resumes.
// Retryable failures (see IsRetryable) resume from the bytes X committed
// after a backoff, within the RetryPolicy; permanent ones end at once.
// Every error is an *Error.
func (c *Client) Upload(ctx context.Context, src Source, o UploadOptions) (*Result, error) {
	s, err := src.open()
	if err != nil {
		return nil, localError(err, o.IdempotencyKey)
	}
	defer s.close()
	if o.IdempotencyKey != "" && !ValidKey(o.IdempotencyKey) {
		return nil, &Error{Code: codes.InvalidArgument, Message: fmt.Sprintf("idempotency key %q: up to 128 characters of A-Z a-z 0-9 . _ ~ : -", o.IdempotencyKey)}
	}
	if o.MediaType == "" && o.ResumeOffset == 0 {
		if o.MediaType = detectType(s.head); o.MediaType == "" {
			return nil, &Error{Code: codes.InvalidArgument, Message: "cannot tell the media type from the first bytes; set UploadOptions.MediaType"}
		}
	}
	if o.SHA256 == "" && s.resumable() {
		if o.SHA256, err = s.hashAll(); err != nil {
			return nil, localError(err, o.IdempotencyKey)
		}
	}
	key := o.IdempotencyKey
	if key == "" && !o.NoIdempotencyKey && s.resumable() {
		xt, err := xToken(ctx)
		if err != nil {
			return nil, localError(err, "")
		}
		key = DeriveKey(c.keyPrefix, KeyInput{SHA256: o.SHA256, Size: s.size, MediaType: o.MediaType,
			Category: o.Category, Account: o.Account, XToken: xt})
	}
	if o.NoIdempotencyKey {
		key = ""
	}
	if o.NoSHA256 {
		s.hasher = nil
	}
	u := &upload{c: c, s: s, o: o, key: key, progress: o.Progress}
	if s.r != nil {
		s.read = o.ResumeOffset
	}
	return u.run(ctx)
}

// upload is one Upload call.
type upload struct {
	c        *Client
	s        *opened
	o        UploadOptions
	key      string
	progress func(Progress)
	resumes  int
	attempts int
}

func (u *upload) report(p Progress) {
	if u.progress != nil {
		p.Total, p.Resumes = u.s.size, u.resumes
		u.progress(p)
	}
}

func (u *upload) result(resp *mediagwv1.UploadResponse, replayed bool) *Result {
	r := &Result{Response: resp, MediaID: resp.GetMediaId(), IdempotencyKey: u.key, SHA256: u.o.SHA256,
		Size: u.s.size, Resumes: u.resumes, Replayed: replayed}
	if r.SHA256 == "" && u.s.hasher != nil && u.o.ResumeOffset == 0 {
		r.SHA256 = hex.EncodeToString(u.s.hasher.Sum(nil))
	}
	if r.Size < 0 {
		r.Size = resp.GetSize()
	}
	u.report(Progress{Sent: r.Size, Committed: r.Size, Done: true})
	return r
}

// fail completes an error with what the upload knows.
func (u *upload) fail(err error) *Error {
	e := convert(err)
	if e.IdempotencyKey == "" {
		e.IdempotencyKey = u.key
	}
	e.Attempts = u.attempts
	return e
}

func (u *upload) run(ctx context.Context) (*Result, error) {
	started := time.Now()
	offset := u.o.ResumeOffset
	resume := u.o.ResumeOffset > 0
	if u.key != "" && !resume {
		st, err := u.c.t.getUpload(ctx, u.key)
		switch {
		case err == nil:
			resp, next, ferr := u.fromLedger(st)
			if resp != nil {
				return u.result(resp, true), nil
			}
			if ferr != nil {
				return nil, ferr
			}
			offset, resume = next, true
		case ctx.Err() != nil:
			return nil, u.fail(ctx.Err())
		default:
			switch e := convert(err); {
			case e.Code == codes.NotFound, e.Code == codes.Unimplemented, e.Code == codes.FailedPrecondition:
				// Not recorded, or no ledger: a fresh upload.
			case !e.retryable():
				return nil, u.fail(err)
			}
		}
	}
	bo := u.c.retry.backoff()
	best, failures := offset, 0
	// takeover: another stream still drives the key (its connection may
	// be half-open): the next attempt resumes, which takes the upload over.
	takeover := false
	for {
		u.attempts++
		resp, err := u.attempt(ctx, offset, resume || takeover)
		if err == nil {
			return u.result(resp, false), nil
		}
		if ctx.Err() != nil {
			return nil, u.interrupted(ctx, ctx.Err(), offset)
		}
		e := u.fail(err)
		if !e.retryable() {
			return nil, e
		}
		takeover = e.Code == codes.Aborted
		next, known := offset, resume
		if e.Upload != nil {
			next, known = e.Upload.GetCommittedBytes(), true
		} else if u.key != "" {
			st, lerr := u.settled(ctx)
			if lerr == nil {
				resp, n, ferr := u.fromLedger(st)
				if resp != nil {
					return u.result(resp, false), nil
				}
				if ferr != nil {
					return nil, ferr
				}
				next, known = n, true
				e.Upload = st
			} else if c := convert(lerr).Code; c == codes.NotFound || c == codes.Unimplemented {
				// mediagw never recorded the key: start over.
				next, known = 0, false
			}
		}
		if u.s.size >= 0 && (next < 0 || next > u.s.size) {
			return nil, &Error{Code: codes.Internal, IdempotencyKey: u.key, Attempts: u.attempts, err: e,
				Message: fmt.Sprintf("mediagw says %d bytes are committed, but the media has %d (%s)", next, u.s.size, e)}
		}
		if !u.s.resumable() && u.s.read != next {
			e.Reason, e.err = ReasonNotResumable, err
			e.Message = fmt.Sprintf("%s; the reader cannot be read again from %d (%d bytes were read)", e.Message, next, u.s.read)
			return nil, e
		}
		if next > best {
			best, failures = next, 0
			bo.Reset()
		}
		failures++
		wait := e.RetryAfter
		if e.Code != codes.FailedPrecondition {
			// A resume_offset mediagw corrected is resumed at once.
			wait = max(wait, bo.NextBackOff())
		}
		elapsedOut := u.c.retry.MaxElapsed > 0 && time.Since(started)+wait > u.c.retry.MaxElapsed
		if failures > u.c.retry.MaxRetries || elapsedOut {
			why := fmt.Sprintf("%d retries in a row without progress", u.c.retry.MaxRetries)
			if elapsedOut {
				why = fmt.Sprintf("%s (the retry deadline)", u.c.retry.MaxElapsed)
			}
			return nil, &Error{Code: e.Code, Reason: ReasonGaveUp, RetryAfter: e.RetryAfter, Quota: e.Quota,
				Upload: e.Upload, IdempotencyKey: u.key, Attempts: u.attempts, err: e,
				Message: fmt.Sprintf("gave up after %s, %d of %d bytes at X; the last error: %s", why, best, u.s.size, e)}
		}
		r := Retry{Op: "upload", Key: u.key, Err: e, Offset: next, Wait: wait, Failures: failures}
		if u.c.notify != nil {
			u.c.notify(r)
		}
		if u.o.OnRetry != nil {
			u.o.OnRetry(r)
		}
		u.report(Progress{Sent: next, Committed: next})
		if err := sleep(ctx, wait); err != nil {
			return nil, u.interrupted(ctx, err, next)
		}
		// A resume needs a key the ledger knows; an unknown one starts
		// afresh.
		offset, resume = next, known && u.key != ""
		u.resumes++
	}
}

// interrupted is the error of a cancelled upload: the context's error,
// with where the upload stands as far as this side knows.
func (u *upload) interrupted(ctx context.Context, err error, offset int64) *Error {
	e := u.fail(err)
	if u.key != "" && e.Upload == nil {
		e.Upload = &mediagwv1.UploadState{IdempotencyKey: u.key, Phase: mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED,
			CommittedBytes: offset, TotalBytes: max(u.s.size, 0)}
	}
	return e
}

// settled asks mediagw's ledger about the key until the upload is no
// longer driven by a stream (the one that just broke is still being
// settled there: its APPENDs in flight finishing), or settleWait passed.
func (u *upload) settled(ctx context.Context) (*mediagwv1.UploadState, error) {
	deadline := time.Now().Add(settleWait)
	for {
		st, err := u.c.t.getUpload(ctx, u.key)
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

// fromLedger decides from mediagw's record of the key: a completed
// upload's response, a failed upload's error, or where to resume.
func (u *upload) fromLedger(st *mediagwv1.UploadState) (*mediagwv1.UploadResponse, int64, *Error) {
	switch st.GetPhase() {
	case mediagwv1.UploadPhase_UPLOAD_PHASE_COMPLETED:
		if st.GetResponse().GetMediaId() == "" {
			return nil, 0, &Error{Code: codes.Internal, IdempotencyKey: u.key, Upload: st,
				Message: fmt.Sprintf("mediagw says upload %s completed but has no media id", u.key)}
		}
		return st.GetResponse(), 0, nil
	case mediagwv1.UploadPhase_UPLOAD_PHASE_FAILED:
		c := codes.FailedPrecondition
		if v, ok := codeByName[st.GetError().GetCode()]; ok {
			c = v
		}
		return nil, 0, &Error{Code: c, IdempotencyKey: u.key, Upload: st, Attempts: u.attempts,
			Message: fmt.Sprintf("an earlier upload with idempotency key %s failed: %s: %s; a new attempt needs another key",
				u.key, st.GetError().GetCode(), st.GetError().GetMessage())}
	}
	return nil, st.GetCommittedBytes(), nil
}

// attempt streams the media from offset once. An attempt whose sending
// makes no progress for the stall timeout is ended as Unavailable.
func (u *upload) attempt(ctx context.Context, offset int64, resume bool) (*mediagwv1.UploadResponse, error) {
	body, ok := u.s.from(offset)
	if !ok {
		if u.s.readErr != nil {
			return nil, localError(u.s.readErr, u.key)
		}
		return nil, &Error{Code: codes.FailedPrecondition, Reason: ReasonNotResumable, IdempotencyKey: u.key,
			Message: fmt.Sprintf("the reader cannot be read again from %d", offset)}
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := u.c.stall
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()
	var remaining atomic.Int64
	remaining.Store(u.s.size - offset)
	if u.s.size >= 0 && u.s.size == offset {
		watchdog.Stop() // nothing to send: only FINALIZE is left
	}
	// The whole source read (of an unknown size, the end shows only
	// here): mediagw may take its time with X.
	body.eof = func() { watchdog.Stop() }
	u.report(Progress{Sent: offset, Committed: offset})
	sentAt := offset
	sent := func(n int) {
		sentAt += int64(n)
		if u.s.size >= 0 && remaining.Add(-int64(n)) <= 0 {
			watchdog.Stop() // all sent: FINALIZE may take its time
		} else {
			watchdog.Reset(stall)
		}
		u.report(Progress{Sent: sentAt, Committed: offset})
	}
	start := &mediagwv1.UploadStart{
		MediaType:        u.o.MediaType,
		MediaCategory:    u.o.Category,
		TotalBytes:       max(u.s.size, 0),
		AdditionalOwners: u.o.AdditionalOwners,
		Shared:           u.o.Shared,
		Sha256:           u.o.SHA256,
		IdempotencyKey:   u.key,
		Account:          u.o.Account,
		Metadata:         u.o.Metadata,
		Subtitles:        u.o.Subtitles,
	}
	if resume && u.key != "" {
		// A resume continues the key's upload (and takes it over from a
		// stream that still drives it).
		start.ResumeOffset = &offset
	}
	resp, err := u.c.t.upload(actx, start, body, sent)
	if err != nil && u.s.readErr != nil {
		return nil, localError(fmt.Errorf("reading the media: %w", u.s.readErr), u.key)
	}
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errStalled) {
		return nil, &Error{Code: codes.Unavailable, Message: fmt.Sprintf("no bytes could be sent for %s", stall)}
	}
	return resp, err
}

// codeByName maps gRPC code names (INVALID_ARGUMENT) to codes.
var codeByName = func() map[string]codes.Code {
	m := map[string]codes.Code{}
	for name, v := range code.Code_value {
		m[name] = codes.Code(v)
	}
	return m
}()
