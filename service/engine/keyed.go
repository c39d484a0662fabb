package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/ledger"
)

// maxKeyLen bounds an idempotency key.
const maxKeyLen = 128

// Errors of stopped uploads.
var (
	errShuttingDown = status.Error(codes.Unavailable, "mediagw is shutting down")
	errSuperseded   = status.Error(codes.Aborted, "superseded by a resume of the same idempotency key on another stream")
	// ErrStopped is what a Source's reads return once its upload is being
	// stopped (Interrupt); the upload's context says why.
	ErrStopped = errors.New("the upload is being stopped")
)

// validKey checks an idempotency key: 1 to 128 characters of A-Z a-z 0-9
// and . _ ~ : - (safe in a URL path and in a Redis key).
func validKey(k string) error {
	if k == "" {
		return apierr.Invalidf("idempotency_key is required")
	}
	if k == "." || k == ".." {
		return apierr.Invalidf("idempotency_key %q is not a key (it cannot be named in a URL path)", k)
	}
	if len(k) > maxKeyLen {
		return apierr.Invalidf("idempotency_key is longer than %d characters", maxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '~' || c == ':' || c == '-') {
			return apierr.Invalidf("idempotency_key %s holds %q; use A-Z a-z 0-9 . _ ~ : -", apierr.Quote(k), c)
		}
	}
	return nil
}

// scope is the ledger key of a caller's idempotency key. Keys are the
// caller's own, and also the X credential's: the same key sent by another
// caller, or by the same caller with another X user token (a service that
// passes its users' tokens), is another upload, so that no user is ever
// answered another's media id or continues another's X session. The
// caller's identity and the token enter as hashes (identities may hold any
// character; tokens are never stored); the account an upload uses is in
// its entry, and a resume or replay naming another is refused.
func scope(c backend.Caller, key string) string {
	var b strings.Builder
	if c.ID == "" {
		b.WriteString("u/")
	} else {
		sum := sha256.Sum256([]byte(c.ID))
		b.WriteString("c/" + hex.EncodeToString(sum[:12]) + "/")
	}
	if c.Auth.Token != "" {
		sum := sha256.Sum256([]byte(c.Auth.Token))
		b.WriteString("t/" + hex.EncodeToString(sum[:12]) + "/")
	}
	b.WriteString(key)
	return b.String()
}

// keyedRun is the ledger side of an upload with an idempotency key: its
// lease on the key and the entry as found (nil for a new key).
type keyedRun struct {
	key     string
	lease   ledger.Lease
	entry   *ledger.Entry
	watched chan struct{}
}

// openKey looks the key up: a finished upload is answered from the ledger
// (done), a live one is refused unless this is a resume taking it over;
// otherwise the key's lease is taken for this stream, which a resume on
// another stream (or the lease lost) stops.
func (u *upload) openKey(ctx context.Context, start *mediagwv1.UploadStart) (k *keyedRun, resp *mediagwv1.UploadResponse, done bool, err error) {
	key := start.GetIdempotencyKey()
	if start.ResumeOffset != nil && start.GetResumeOffset() < 0 {
		return nil, nil, false, apierr.Invalidf("resume_offset %d is not a byte offset", start.GetResumeOffset())
	}
	if key == "" {
		return nil, nil, false, apierr.Invalidf("idempotency_key is required with resume_offset")
	}
	if err := validKey(key); err != nil {
		return nil, nil, false, err
	}
	l := u.e.cfg.Ledger
	if l == nil {
		return nil, nil, false, &apierr.Error{Code: codes.FailedPrecondition, Msg: "idempotency keys need mediagw's ledger, which is off"}
	}
	u.keyed = true
	scoped := scope(u.caller, key)
	u.entryKey = scoped
	resume := start.ResumeOffset != nil
	// Finished keys answer without a lease.
	e, err := l.Get(ctx, scoped)
	switch {
	case err == nil && (e.Phase == ledger.PhaseCompleted || e.Phase == ledger.PhaseFailed):
		resp, err := u.replay(ctx, e, start)
		return nil, resp, true, err
	case errors.Is(err, ledger.ErrNoEntry) && !resume:
		// A key the ledger does not hold yet will cost an entry: it is
		// charged to the caller (a resume or a takeover is not new).
		if err := u.e.cfg.Policies.AllowKey(u.caller); err != nil {
			return nil, nil, false, err
		}
	case err != nil && !errors.Is(err, ledger.ErrNoEntry):
		return nil, nil, false, ledgerError(err)
	}
	lease, e, err := l.Acquire(ctx, scoped, resume)
	switch {
	case errors.Is(err, ledger.ErrHeld):
		return nil, nil, false, &apierr.Error{Code: codes.Aborted, Msg: fmt.Sprintf("another stream is uploading idempotency key %s now; "+
			"to take it over, resume it (resume_offset = its committed_bytes)", apierr.Quote(key))}
	case err != nil:
		return nil, nil, false, ledgerError(err)
	}
	run := &keyedRun{key: key, lease: lease, entry: e, watched: make(chan struct{})}
	// A resume taking over, or the lease lost, stops this upload.
	go func() {
		select {
		case <-lease.Stopped():
			u.cancel(stopCause(lease))
		case <-run.watched:
		}
	}()
	switch {
	case e == nil && resume:
		run.release()
		return nil, nil, false, apierr.NotFoundf("no upload with idempotency key %s to resume (unknown, or expired)", apierr.Quote(key))
	case e != nil && (e.Phase == ledger.PhaseCompleted || e.Phase == ledger.PhaseFailed):
		run.release()
		resp, err := u.replay(ctx, e, start)
		return nil, resp, true, err
	}
	return run, nil, false, nil
}

// release gives the key's lease up.
func (k *keyedRun) release() {
	close(k.watched)
	ctx, cancel := context.WithTimeout(context.Background(), ledgerWriteTimeout)
	defer cancel()
	_ = k.lease.Release(ctx)
}

// resumable checks a resume of the interrupted upload k found against
// it, and returns its start message completed from the ledger.
func (k *keyedRun) resumable(u *upload, start *mediagwv1.UploadStart) (*mediagwv1.UploadStart, error) {
	e := k.entry
	merged, err := mergeStart(e, start)
	if err != nil {
		return nil, err
	}
	if err := u.sameActions(e, start); err != nil { // actions.go
		return nil, err
	}
	if off := start.GetResumeOffset(); off != e.Committed {
		return nil, resumeMismatch(e, off)
	}
	if n := u.src.MediaLen(); n >= 0 && n != e.Start.TotalBytes-e.Committed {
		return nil, apierr.Invalidf("the body has %d bytes; resuming at %d of %d needs the remaining %d", n, e.Committed, e.Start.TotalBytes, e.Start.TotalBytes-e.Committed)
	}
	return merged, nil
}

// sessionContext is the context of a keyed upload's session at X. It
// outlives the caller's: when the caller goes, the APPENDs that hold all
// their bytes still finish (settle interrupts the session, which cancels
// what is left after InterruptWait), and a FINALIZE under way completes
// and is recorded for a replay. It ends when the upload returns.
func (u *upload) sessionContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.WithoutCancel(ctx))
}

// beginNew sends INIT for the first life of a keyed upload: it is
// recorded once X's INIT answered, and every acknowledged segment is
// recorded as it comes.
func (k *keyedRun) beginNew(ctx, sctx context.Context, u *upload, start *mediagwv1.UploadStart) (backend.Session, error) {
	now := time.Now()
	// The entry holds the real size, also of a spooled upload.
	e := &ledger.Entry{Key: k.key, Phase: ledger.PhaseReceiving, Start: ledgerStart(u.spec, start), Created: now, Updated: now, Trace: traceparent(ctx),
		Actions: u.actions}
	rec := newRecord(k.lease, e)
	u.rec = rec
	spec := u.spec
	spec.SegmentDone, spec.Replanned = rec.segmentDone, u.replanned
	sess, err := u.e.cfg.Backend.Begin(sctx, u.caller.Auth, spec)
	if err != nil {
		return nil, err
	}
	u.begun(ctx, sess)
	err = rec.update(ctx, func(e *ledger.Entry) {
		e.MediaID, e.MediaKey, e.SegmentSize, e.Segments = sess.MediaID(), sess.MediaKey(), u.info.SegmentSize, u.info.Segments
		e.Expires = sess.Expires()
		if e.Expires.IsZero() {
			e.Expires = now.Add(u.e.cfg.StatusTTL)
		}
		if u.insp.live() && u.insp.decided() {
			// What the head decided, for a resume that cannot read it again.
			e.Verdict = u.insp.verdict(u.insp.violationsOf(), false)
		}
	})
	if err != nil {
		sess.Abort(err)
		return nil, ledgerError(err)
	}
	return sess, nil
}

// beginResume continues an interrupted upload from its committed bytes,
// in the session its INIT opened.
func (k *keyedRun) beginResume(ctx, sctx context.Context, u *upload) (backend.Session, error) {
	e := k.entry
	rec := newRecord(k.lease, e)
	u.rec = rec
	if !e.Expires.IsZero() && time.Now().After(e.Expires) {
		return nil, rec.fail(ctx, apierr.NotFoundf("X's upload session for media %s expired at %s; start again with a new idempotency key",
			e.MediaID, e.Expires.UTC().Format(time.RFC3339)))
	}
	if u.digest != nil && e.Committed > 0 {
		d, err := restoreHash(e.HashState)
		if err != nil {
			return nil, rec.fail(ctx, fmt.Errorf("the ledger's hash state for %s is unusable: %w", apierr.Quote(e.Key), err))
		}
		u.digest = d
	}
	u.received = e.Committed
	u.outcome = "resumed"
	u.e.tel.resumes.Add(ctx, 1)
	if sc := parentFrom(e.Trace); sc.IsValid() {
		trace.SpanFromContext(ctx).AddLink(trace.Link{SpanContext: sc})
	}
	spec := u.spec
	spec.SegmentDone, spec.Replanned = rec.segmentDone, u.replanned
	sess, err := u.e.cfg.Backend.Resume(sctx, u.caller.Auth, spec, backend.ResumeAt{
		MediaID: e.MediaID, MediaKey: e.MediaKey, Expires: e.Expires,
		SegmentSize: e.SegmentSize, Segments: e.Segments, Plan: backendPlan(e.Plan), Acked: e.IsAcked, Offset: e.Committed,
	})
	if err != nil {
		return nil, rec.fail(ctx, err)
	}
	u.begun(ctx, sess)
	if err := rec.update(ctx, func(e *ledger.Entry) { e.Phase, e.Error = ledger.PhaseReceiving, nil }); err != nil {
		sess.Abort(err)
		return nil, ledgerError(err)
	}
	return sess, nil
}

// settle records how an upload ended: COMPLETED with its response; for a
// keyed upload INTERRUPTED, resumable, when the stream, mediagw or X's
// availability ended it early; FAILED otherwise.
func (u *upload) settle(ctx context.Context, sess backend.Session, media backend.Media, err error) (*mediagwv1.UploadResponse, error) {
	u.info = sess.Info()
	err = stoppedBecause(ctx, err)
	if err == nil {
		resp := u.respond(media)
		if !u.keyed {
			return resp, nil
		}
		b, _ := protojson.Marshal(resp)
		werr := u.rec.update(ctx, func(e *ledger.Entry) {
			e.Phase, e.Response, e.Error, e.Committed = ledger.PhaseCompleted, b, nil, e.Start.TotalBytes
			if u.insp.live() {
				e.Verdict = u.insp.verdict(u.insp.violationsOf(), false)
			}
			e.HashState = nil
			if media.ExpiresAfterSecs > 0 {
				e.Expires = time.Now().Add(time.Duration(media.ExpiresAfterSecs) * time.Second)
			}
		})
		if werr != nil {
			u.e.log.WarnContext(ctx, "ledger: recording a completed upload failed", "error", werr.Error())
		}
		return resp, nil
	}
	if !u.keyed || !resumable(err) {
		sess.Abort(err)
		return nil, u.rec.fail(ctx, err)
	}
	sess.Interrupt(u.e.cfg.InterruptWait)
	st := apierr.ToStatus(err)
	if status.Code(st) == codes.Canceled {
		st = status.Errorf(codes.Canceled, "the caller's stream ended after %d of %d bytes (cancelled, or the connection was lost)", u.received, u.spec.TotalBytes)
	}
	werr := u.rec.update(ctx, func(e *ledger.Entry) {
		e.Phase = ledger.PhaseInterrupted
		e.Error = &ledger.Error{Code: apierr.CodeName(status.Code(st)), Message: status.Convert(st).Message()}
	})
	if werr != nil {
		return nil, ledgerError(werr)
	}
	u.outcome = "interrupted"
	u.e.tel.interruptions.Add(ctx, 1)
	return nil, interrupted(u.rec.snapshot(), st)
}

// resumable reports whether err interrupts a keyed upload (it can go on
// from its committed bytes) rather than failing it.
func resumable(err error) bool {
	if apierr.IsResumable(err) {
		return true
	}
	switch status.Code(apierr.ToStatus(err)) {
	case codes.Canceled, codes.DeadlineExceeded, codes.Unavailable, codes.Aborted, codes.ResourceExhausted, codes.Unauthenticated:
		return true
	}
	return false
}

// stoppedBecause replaces the error of an upload that was stopped (its
// body read errStopped, or its session was cancelled) by why it was
// stopped: mediagw shutting down, a resume taking over, the caller gone.
// Other errors stand, even once the context ended: an idle REST caller's
// deadline also ends the request's context, and the caller must still
// learn that it was idle.
func stoppedBecause(ctx context.Context, err error) error {
	if errors.Is(err, ErrStopped) || ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return context.Cause(ctx)
	}
	return err
}

// stopCause is why a lease's holder was told to stop: a resume taking
// the upload over, or the lease lost (it could not be renewed in time).
func stopCause(l ledger.Lease) error {
	if c, ok := l.(interface{ Cause() error }); ok {
		if err := c.Cause(); err != nil {
			return status.Errorf(codes.Unavailable, "this replica lost the upload's ledger lease (%v)", err)
		}
	}
	return errSuperseded
}

// replay answers a key whose upload finished: its response, with no call
// to X, or its error.
func (u *upload) replay(ctx context.Context, e *ledger.Entry, start *mediagwv1.UploadStart) (*mediagwv1.UploadResponse, error) {
	if _, err := mergeStart(e, start); err != nil {
		return nil, err
	}
	if err := u.sameActions(e, start); err != nil { // actions.go
		return nil, err
	}
	// No quota is used (X is not called), but the caller must still be
	// allowed the account.
	if err := u.e.cfg.Policies.Authorize(&u.caller, e.Start.Account, true); err != nil {
		return nil, err
	}
	u.outcome = "replayed"
	u.mediaID = e.MediaID
	u.spec = backend.Spec{MediaType: e.Start.MediaType, Category: e.Start.Category, TotalBytes: e.Start.TotalBytes}
	u.e.tel.replays.Add(ctx, 1)
	if e.Phase == ledger.PhaseFailed {
		if err := storedRefusal(e); err != nil {
			return nil, err
		}
		return nil, storedError(e)
	}
	resp := &mediagwv1.UploadResponse{}
	if err := protojson.Unmarshal(e.Response, resp); err != nil {
		return nil, fmt.Errorf("the ledger's response for %s is unreadable: %w", apierr.Quote(e.Key), err)
	}
	// The media is the caller's again for its status, also after a restart.
	u.e.cfg.Relay.Own(u.caller, e.MediaID, e.Expires)
	return resp, nil
}
