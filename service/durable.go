package service

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// maxKeyLen bounds an idempotency key.
const maxKeyLen = 128

// Errors of stopped uploads.
var (
	errShuttingDown = status.Error(codes.Unavailable, "mediagw is shutting down")
	errSuperseded   = status.Error(codes.Aborted, "superseded by a resume of the same idempotency key on another stream")
	// errStopped is what a body reads once its upload is being stopped;
	// the upload's context says why.
	errStopped = errors.New("the upload is being stopped")
)

// validKey checks an idempotency key: 1 to 128 characters of A-Z a-z 0-9
// and . _ ~ : - (safe in a URL path and in a Redis key).
func validKey(k string) error {
	if k == "" {
		return invalidf("idempotency_key is required with resume_offset")
	}
	if len(k) > maxKeyLen {
		return invalidf("idempotency_key is longer than %d characters", maxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '~' || c == ':' || c == '-') {
			return invalidf("idempotency_key %s holds %q; use A-Z a-z 0-9 . _ ~ : -", quote(k), c)
		}
	}
	return nil
}

// scope is the ledger key of a caller's idempotency key: keys are the
// caller's own, so another caller's same key is another upload. The
// caller's identity enters as a hash (identities may hold any character);
// without authentication every caller is the same one.
func (c Caller) scope(key string) string {
	if c.ID == "" {
		return "u/" + key
	}
	sum := sha256.Sum256([]byte(c.ID))
	return "c/" + hex.EncodeToString(sum[:12]) + "/" + key
}

// runKeyed runs an upload that carries an idempotency key: a replay of a
// finished one, a resume of an interrupted one, or a new one recorded in
// the ledger as it goes.
func (u *upload) runKeyed(ctx context.Context, start *mediagwv1.UploadStart, body io.Reader) (*mediagwv1.UploadResponse, error) {
	key := start.GetIdempotencyKey()
	if err := validKey(key); err != nil {
		return nil, err
	}
	l := u.s.cfg.Ledger
	if l == nil {
		return nil, &inputError{code: codes.FailedPrecondition, msg: "idempotency keys need mediagw's ledger, which is off"}
	}
	scoped := u.caller.scope(key)
	resume := start.ResumeOffset != nil
	// Finished keys answer without a lease.
	if e, err := l.Get(ctx, scoped); err == nil && (e.Phase == PhaseCompleted || e.Phase == PhaseFailed) {
		return u.replay(ctx, e, start)
	} else if err != nil && !errors.Is(err, ErrNoEntry) {
		return nil, ledgerError(err)
	}
	lease, e, err := l.Acquire(ctx, scoped, resume)
	switch {
	case errors.Is(err, ErrHeld):
		return nil, &inputError{code: codes.Aborted, msg: fmt.Sprintf("another stream is uploading idempotency key %s now; "+
			"to take it over, resume it (resume_offset = its committed_bytes)", quote(key))}
	case err != nil:
		return nil, ledgerError(err)
	}
	rctx := context.WithoutCancel(ctx)
	defer func() { _ = lease.Release(rctx) }()
	// A resume taking over, or the lease lost, stops this upload.
	watched := make(chan struct{})
	defer close(watched)
	go func() {
		select {
		case <-lease.Stopped():
			u.cancel(stopCause(lease))
		case <-watched:
		}
	}()
	switch {
	case e == nil && resume:
		return nil, notFoundf("no upload with idempotency key %s to resume (unknown, or expired)", quote(key))
	case e == nil:
		return u.runNew(ctx, lease, key, start, body)
	case e.Phase == PhaseCompleted || e.Phase == PhaseFailed:
		return u.replay(ctx, e, start)
	}
	return u.runResume(ctx, lease, e, start, body)
}

// stoppedBecause replaces the error of an upload that was stopped (its
// body read errStopped, or its session was cancelled) by why it was
// stopped: mediagw shutting down, a resume taking over, the caller gone.
// Other errors stand, even once the context ended: an idle REST caller's
// deadline also ends the request's context, and the caller must still
// learn that it was idle.
func stoppedBecause(ctx context.Context, err error) error {
	if errors.Is(err, errStopped) || ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return context.Cause(ctx)
	}
	return err
}

// stopCause is why a lease's holder was told to stop: a resume taking
// the upload over, or the lease lost (it could not be renewed in time).
func stopCause(l Lease) error {
	if c, ok := l.(interface{ Cause() error }); ok {
		if err := c.Cause(); err != nil {
			return status.Errorf(codes.Unavailable, "this replica lost the upload's ledger lease (%v)", err)
		}
	}
	return errSuperseded
}

// sessionContext is the context of a keyed upload's session at X. It
// outlives the caller's: when the caller goes, the APPENDs that hold all
// their bytes still finish (settle interrupts the session, which cancels
// what is left after InterruptWait), and a FINALIZE under way completes
// and is recorded for a replay. It ends when the upload returns.
func (u *upload) sessionContext(ctx context.Context) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	u.sessCtx = sctx
	return sctx, cancel
}

// runNew runs the first life of a keyed upload: it is recorded once X's
// INIT answered, and every acknowledged segment is recorded as it comes.
func (u *upload) runNew(ctx context.Context, lease Lease, key string, start *mediagwv1.UploadStart, body io.Reader) (*mediagwv1.UploadResponse, error) {
	head, body, done, err := u.accept(ctx, start, body)
	if err != nil {
		return nil, err
	}
	defer done()
	now := time.Now()
	// The entry holds the real size, also of a spooled upload.
	e := &LedgerEntry{Key: key, Phase: PhaseReceiving, Start: ledgerStart(u.spec, start), Created: now, Updated: now, Trace: traceparent(ctx)}
	u.rec = newRecord(lease, e)
	spec := u.spec
	spec.SegmentDone = u.rec.segmentDone
	sctx, scancel := u.sessionContext(ctx)
	defer scancel()
	sess, err := u.s.backend.Begin(sctx, u.caller.Auth, spec)
	if err != nil {
		u.rec.close()
		return nil, err
	}
	u.begun(ctx, sess)
	err = u.rec.update(ctx, func(e *LedgerEntry) {
		e.MediaID, e.MediaKey, e.SegmentSize, e.Segments = sess.MediaID(), sess.MediaKey(), u.info.SegmentSize, u.info.Segments
		e.Expires = sess.Expires()
		if e.Expires.IsZero() {
			e.Expires = now.Add(u.s.cfg.StatusTTL)
		}
	})
	if err != nil {
		sess.Abort(err)
		u.rec.close()
		return nil, ledgerError(err)
	}
	media, err := u.pump(ctx, sess, head, body)
	return u.settle(ctx, sess, media, err)
}

// runResume continues an interrupted upload from its committed bytes.
func (u *upload) runResume(ctx context.Context, lease Lease, e *LedgerEntry, start *mediagwv1.UploadStart, body io.Reader) (*mediagwv1.UploadResponse, error) {
	merged, err := mergeStart(e, start)
	if err != nil {
		return nil, err
	}
	if off := start.GetResumeOffset(); off != e.Committed {
		return nil, resumeMismatch(e, off)
	}
	if n := u.opts.bodyLen; n >= 0 && n != e.Start.TotalBytes-e.Committed {
		return nil, invalidf("the body has %d bytes; resuming at %d of %d needs the remaining %d", n, e.Committed, e.Start.TotalBytes, e.Start.TotalBytes-e.Committed)
	}
	if err := u.prepare(ctx, merged); err != nil {
		return nil, err
	}
	if err := u.admit(ctx, merged.GetAccount(), e.Committed); err != nil {
		return nil, err
	}
	u.rec = newRecord(lease, e)
	if !e.Expires.IsZero() && time.Now().After(e.Expires) {
		return nil, u.rec.fail(ctx, notFoundf("X's upload session for media %s expired at %s; start again with a new idempotency key",
			e.MediaID, e.Expires.UTC().Format(time.RFC3339)))
	}
	if u.digest != nil && e.Committed > 0 {
		d, err := restoreHash(e.HashState)
		if err != nil {
			return nil, u.rec.fail(ctx, fmt.Errorf("the ledger's hash state for %s is unusable: %w", quote(e.Key), err))
		}
		u.digest = d
	}
	u.received = e.Committed
	u.outcome = "resumed"
	u.s.tel.resumes.Add(ctx, 1)
	if sc := parentFrom(e.Trace); sc.IsValid() {
		trace.SpanFromContext(ctx).AddLink(trace.Link{SpanContext: sc})
	}
	spec := u.spec
	spec.SegmentDone = u.rec.segmentDone
	sctx, scancel := u.sessionContext(ctx)
	defer scancel()
	sess, err := u.s.backend.Resume(sctx, u.caller.Auth, spec, ResumeAt{
		MediaID: e.MediaID, MediaKey: e.MediaKey, Expires: e.Expires,
		SegmentSize: e.SegmentSize, Segments: e.Segments, Acked: e.acked, Offset: e.Committed,
	})
	if err != nil {
		return nil, u.rec.fail(ctx, err)
	}
	u.begun(ctx, sess)
	if err := u.rec.update(ctx, func(e *LedgerEntry) { e.Phase, e.Error = PhaseReceiving, nil }); err != nil {
		sess.Abort(err)
		return nil, ledgerError(err)
	}
	media, err := u.pump(ctx, sess, nil, body)
	return u.settle(ctx, sess, media, err)
}

// settle records how a keyed upload ended: COMPLETED with its response;
// INTERRUPTED, resumable, when the stream, mediagw or X's availability
// ended it early; FAILED otherwise.
func (u *upload) settle(ctx context.Context, sess Session, media Media, err error) (*mediagwv1.UploadResponse, error) {
	u.info = sess.Info()
	defer u.rec.close()
	err = stoppedBecause(ctx, err)
	if err == nil {
		resp := u.respond(media)
		b, _ := protojson.Marshal(resp)
		werr := u.rec.update(ctx, func(e *LedgerEntry) {
			e.Phase, e.Response, e.Error, e.Committed = PhaseCompleted, b, nil, e.Start.TotalBytes
			e.HashState = nil
			if media.ExpiresAfterSecs > 0 {
				e.Expires = time.Now().Add(time.Duration(media.ExpiresAfterSecs) * time.Second)
			}
		})
		if werr != nil {
			u.s.log.WarnContext(ctx, "ledger: recording a completed upload failed", "error", werr.Error())
		}
		return resp, nil
	}
	if !resumable(err) {
		sess.Abort(err)
		return nil, u.rec.fail(ctx, err)
	}
	sess.Interrupt(u.s.cfg.InterruptWait)
	st := toStatus(err)
	if status.Code(st) == codes.Canceled {
		st = status.Errorf(codes.Canceled, "the caller's stream ended after %d of %d bytes (cancelled, or the connection was lost)", u.received, u.spec.TotalBytes)
	}
	werr := u.rec.update(ctx, func(e *LedgerEntry) {
		e.Phase = PhaseInterrupted
		e.Error = &LedgerError{Code: codeName(status.Convert(st)), Message: status.Convert(st).Message()}
	})
	if werr != nil {
		return nil, ledgerError(werr)
	}
	u.outcome = "interrupted"
	u.s.tel.interruptions.Add(ctx, 1)
	return nil, interrupted(u.rec.snapshot(), st)
}

// resumable reports whether err interrupts a keyed upload (it can go on
// from its committed bytes) rather than failing it.
func resumable(err error) bool {
	var in *inputError
	if errors.As(err, &in) && in.resumable {
		return true
	}
	switch status.Code(toStatus(err)) {
	case codes.Canceled, codes.DeadlineExceeded, codes.Unavailable, codes.Aborted, codes.ResourceExhausted, codes.Unauthenticated:
		return true
	}
	return false
}

// replay answers a key whose upload finished: its response, with no call
// to X, or its error.
func (u *upload) replay(ctx context.Context, e *LedgerEntry, start *mediagwv1.UploadStart) (*mediagwv1.UploadResponse, error) {
	if _, err := mergeStart(e, start); err != nil {
		return nil, err
	}
	// No quota is used (X is not called), but the caller must still be
	// allowed the account.
	if _, err := u.s.policy.authorize(&u.caller, e.Start.Account, true); err != nil {
		return nil, err
	}
	u.outcome = "replayed"
	u.mediaID = e.MediaID
	u.spec = Spec{MediaType: e.Start.MediaType, Category: e.Start.Category, TotalBytes: e.Start.TotalBytes}
	u.s.tel.replays.Add(ctx, 1)
	if e.Phase == PhaseFailed {
		return nil, storedError(e)
	}
	resp := &mediagwv1.UploadResponse{}
	if err := protojson.Unmarshal(e.Response, resp); err != nil {
		return nil, fmt.Errorf("the ledger's response for %s is unreadable: %w", quote(e.Key), err)
	}
	// The media is the caller's again for its status, also after a restart.
	u.s.status.own(u.caller, e.MediaID, e.Expires)
	return resp, nil
}

// mergeStart fills the fields a resume or replay may omit from the
// ledger, and refuses fields given with other values than the original's.
func mergeStart(e *LedgerEntry, st *mediagwv1.UploadStart) (*mediagwv1.UploadStart, error) {
	o := e.Start
	differ := func(field string, got, want any) error {
		return invalidf("idempotency key %s was started with %s %v, not %v; a new upload needs a new key", quote(e.Key), field, want, got)
	}
	m := &mediagwv1.UploadStart{
		MediaType: o.MediaType, TotalBytes: o.TotalBytes, AdditionalOwners: o.AdditionalOwners,
		Shared: o.Shared, Sha256: o.SHA256, IdempotencyKey: e.Key, Account: o.Account,
	}
	m.MediaCategory, _ = ParseCategory(o.Category)
	if v := st.GetMediaType(); v != "" && v != o.MediaType {
		return nil, differ("media_type", quote(v), o.MediaType)
	}
	if v := st.GetTotalBytes(); v != 0 && v != o.TotalBytes {
		return nil, differ("total_bytes", v, o.TotalBytes)
	}
	if c := st.GetMediaCategory(); c != mediagwv1.MediaCategory_MEDIA_CATEGORY_UNSPECIFIED && categoryNames[c] != o.Category {
		return nil, differ("media_category", categoryNames[c], o.Category)
	}
	if v := st.GetAdditionalOwners(); len(v) > 0 && !slices.Equal(v, o.AdditionalOwners) {
		return nil, differ("additional_owners", v, o.AdditionalOwners)
	}
	if st.GetShared() && !o.Shared {
		return nil, differ("shared", true, false)
	}
	if v := st.GetSha256(); v != "" && v != o.SHA256 {
		return nil, differ("sha256", quote(v), quote(o.SHA256))
	}
	if v := st.GetAccount(); v != "" && v != o.Account {
		return nil, differ("account", quote(v), quote(o.Account))
	}
	return m, nil
}

func ledgerStart(s Spec, st *mediagwv1.UploadStart) LedgerStart {
	return LedgerStart{
		MediaType: s.MediaType, Category: s.Category, TotalBytes: s.TotalBytes,
		AdditionalOwners: s.AdditionalOwners, Shared: s.Shared, SHA256: st.GetSha256(), Account: st.GetAccount(),
	}
}

// restoreHash rebuilds a SHA-256 digest from its marshaled state.
func restoreHash(state []byte) (hash.Hash, error) {
	d := sha256.New()
	u, ok := d.(encoding.BinaryUnmarshaler)
	if !ok || len(state) == 0 {
		return nil, errors.New("no hash state")
	}
	if err := u.UnmarshalBinary(state); err != nil {
		return nil, err
	}
	return d, nil
}

// traceparent is the W3C trace context of ctx's span, for span links.
func traceparent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

func parentFrom(tp string) trace.SpanContext {
	if tp == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
	return trace.SpanContextFromContext(ctx)
}

// ledgerError is the error of a ledger that cannot be read or written.
func ledgerError(err error) error {
	if errors.Is(err, ErrLeaseLost) {
		return status.Error(codes.Aborted, "this stream lost the upload to another one (its ledger lease was taken over)")
	}
	return status.Errorf(codes.Unavailable, "mediagw's upload ledger is unavailable: %v", err)
}

// storedError is a FAILED entry's error.
func storedError(e *LedgerEntry) error {
	code := codes.Unknown
	if e.Error != nil {
		for c := codes.OK; c <= codes.Unauthenticated; c++ {
			if codeName(status.New(c, "")) == e.Error.Code {
				code = c
			}
		}
		return status.Errorf(code, "%s (the upload with idempotency key %s failed before; a new attempt needs a new key)", e.Error.Message, quote(e.Key))
	}
	return status.Errorf(code, "the upload with idempotency key %s failed before; a new attempt needs a new key", quote(e.Key))
}

// interrupted is the caller's error for an interrupted upload: cause's
// code becomes Unavailable (try again: resume), with the upload's state
// as a detail so the caller knows where to resume.
func interrupted(st *mediagwv1.UploadState, cause error) error {
	c := status.Convert(cause)
	code := codes.Unavailable
	if c.Code() == codes.Aborted {
		code = codes.Aborted // superseded: the other stream goes on
	}
	s := status.New(code, fmt.Sprintf("the upload was interrupted (%s) with %d of %d bytes committed at X; resume it with idempotency_key %s and resume_offset %d",
		c.Message(), st.GetCommittedBytes(), st.GetTotalBytes(), quote(st.GetIdempotencyKey()), st.GetCommittedBytes()))
	if d, err := s.WithDetails(st); err == nil {
		s = d
	}
	return s.Err()
}

// resumeMismatch refuses a resume_offset that is not the committed bytes.
func resumeMismatch(e *LedgerEntry, off int64) error {
	s := status.New(codes.FailedPrecondition, fmt.Sprintf("resume_offset %d is not where idempotency key %s stands: resume at committed_bytes %d",
		off, quote(e.Key), e.Committed))
	if d, err := s.WithDetails(stateOf(e)); err == nil {
		s = d
	}
	return s.Err()
}

// GetUpload implements mediagw.v1.MediaUploadService.
func (s *Server) GetUpload(ctx context.Context, req *mediagwv1.GetUploadRequest) (*mediagwv1.UploadState, error) {
	c, err := s.callerFromContext(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	if _, err := s.policy.authorize(&c, "", false); err != nil {
		return nil, toStatus(err)
	}
	key := req.GetIdempotencyKey()
	if err := validKey(key); err != nil {
		return nil, toStatus(err)
	}
	if s.cfg.Ledger == nil {
		return nil, toStatus(notFoundf("no upload with idempotency key %s (mediagw's ledger is off)", quote(key)))
	}
	e, err := s.cfg.Ledger.Get(ctx, c.scope(key))
	if errors.Is(err, ErrNoEntry) {
		return nil, toStatus(notFoundf("no upload with idempotency key %s", quote(key)))
	}
	if err != nil {
		return nil, ledgerError(err)
	}
	return stateOf(e), nil
}
