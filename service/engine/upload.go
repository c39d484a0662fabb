package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/inspect/rules"
	"github.com/mediagw/mediagw/service/ledger"
	"github.com/mediagw/mediagw/service/policy"
	"github.com/mediagw/mediagw/service/relay"
)

// Run runs one upload from src for the caller c, who was authenticated by
// the transport: the one upload path of every transport. Everything that
// can be checked without X (the start message, the policy, the size
// limits, the first bytes) is checked before INIT; afterwards the bytes go
// straight into the session, which cuts them into segments. An upload
// with an idempotency key is recorded in the ledger as it goes; one
// without has a record that keeps nothing. The error is a gRPC status.
func (e *Engine) Run(ctx context.Context, c backend.Caller, src Source) (*mediagwv1.UploadResponse, error) {
	ctx, span := e.tel.tracer.Start(ctx, "upload", trace.WithAttributes(attrTransport.String(src.Transport())))
	defer span.End()
	if c.ID != "" {
		span.SetAttributes(attrCallerID.String(c.ID))
	}
	e.tel.inFlight.Add(ctx, 1)
	defer e.tel.inFlight.Add(ctx, -1)
	// The upload stops when its caller goes, and when mediagw stops it
	// (drain past the timeout, a resume taking the upload over).
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(e.stopping, func() { cancel(errShuttingDown) })
	defer stop()
	defer context.AfterFunc(ctx, src.Interrupt)()
	u := &upload{e: e, caller: c, label: e.cfg.Policies.Label(c.ID), src: src, started: time.Now(), cancel: cancel, rec: noRecord{}}
	var resp *mediagwv1.UploadResponse
	release, raw := e.admit.enter(ctx)
	if raw == nil {
		resp, raw = u.run(ctx)
		release()
		if raw == nil {
			u.completed(ctx, resp) // metadata and subtitles (actions.go)
		}
	}
	raw = stoppedBecause(ctx, raw)
	err := apierr.ToStatus(raw)
	u.ticket.Done(u.sent())
	u.finish(ctx, span, err, raw)
	return resp, err
}

// upload is the state of one upload.
type upload struct {
	e        *Engine
	caller   backend.Caller
	label    string // the caller's bounded metric label
	src      Source
	started  time.Time
	cancel   context.CancelCauseFunc
	spec     backend.Spec
	mediaID  string
	received int64
	info     backend.SessionInfo // zero until INIT succeeded
	// segPlan is how the session cuts the bytes, for the hash states a
	// keyed upload keeps at segment boundaries; it changes when X refused
	// segments as too large (replanned).
	segPlan backend.Plan
	// ticket is the upload's hold on its caller's quotas, nil until the
	// callers policy admitted it; base is where this life of the upload
	// started (a resume's committed bytes).
	ticket *policy.Ticket
	base   int64

	// want is the SHA-256 the caller declared, digest the running hash of
	// the bytes received; both nil when the caller declared none.
	want   []byte
	digest hash.Hash

	// rec is the upload's ledger record: a record of the ledger entry for
	// an upload with an idempotency key, noRecord for one without.
	rec journal
	// keyed is set for an upload with an idempotency key; its session
	// outlives the caller (see sessionContext).
	keyed bool
	// outcome says how the upload ended, for the log line: "" (as its
	// error says), replayed, resumed, interrupted.
	outcome string
	// entryKey is the ledger key of a keyed upload; actions is what the
	// upload asks to be done once the media is usable (actions.go).
	entryKey string
	actions  *ledger.Actions
	// insp inspects the media as it streams; nil with --media-checks off
	// (and for a resumed upload whose first life did not decide).
	insp *inspection
	// refused holds the violations the upload was refused for.
	refused []rules.Violation
	// tallied is how many bytes of the head were counted: the head read
	// before INIT to inspect it is counted once INIT told the segments.
	tallied int
}

// run is the one upload path: the start message; for a keyed upload its
// ledger entry (a finished key is replayed, an interrupted one resumed);
// then admission, the first bytes, INIT (or the resumed session), the
// bytes and FINALIZE.
func (u *upload) run(ctx context.Context) (*mediagwv1.UploadResponse, error) {
	if err := u.e.ready(); err != nil {
		return nil, err
	}
	start, err := u.src.Start()
	if err != nil {
		return nil, err
	}
	// Whatever record the upload gets, its writer ends with it.
	defer func() { u.rec.close() }()
	var k *keyedRun
	if start.GetIdempotencyKey() != "" || start.ResumeOffset != nil {
		var resp *mediagwv1.UploadResponse
		var done bool
		k, resp, done, err = u.openKey(ctx, start)
		if done || err != nil {
			return resp, err
		}
		defer k.release()
		if k.entry != nil {
			if start, err = k.resumable(u, start); err != nil {
				return nil, err
			}
		}
	}
	base := int64(0)
	if k != nil && k.entry != nil {
		base = k.entry.Committed
	}
	if err := u.prepare(ctx, start); err != nil {
		return nil, err
	}
	if err := u.admit(ctx, start.GetAccount(), base); err != nil {
		return nil, err
	}
	if base == 0 && (k == nil || k.entry == nil) {
		if err := u.plan(ctx, start); err != nil { // actions.go
			return nil, err
		}
	}
	var head []byte
	var spooled io.ReadCloser
	if k != nil && k.entry != nil && k.entry.Verdict != nil && u.e.cfg.MediaChecks != ChecksOff {
		// A resume cannot inspect the bytes before its offset: it reports
		// what its first life decided.
		u.insp = &inspection{stored: k.entry.Verdict, mode: u.e.cfg.MediaChecks}
	}
	if base == 0 && (k == nil || k.entry == nil) {
		u.insp = u.newInspection(u.caller.Auth.Account)
		if head, spooled, err = u.head(ctx); err != nil {
			if u.refused != nil && k != nil {
				return nil, u.recordRefusal(ctx, k, start, err)
			}
			return nil, err
		}
		if spooled != nil {
			defer spooled.Close()
		}
	}
	sctx := ctx
	if k != nil {
		var scancel context.CancelFunc
		sctx, scancel = u.sessionContext(ctx)
		defer scancel()
	}
	sess, err := u.begin(ctx, sctx, k, start)
	if err != nil {
		return nil, err
	}
	media, err := u.pump(ctx, sctx, sess, head, spooled)
	return u.settle(ctx, sess, media, err)
}

// begin opens the upload's session at X: INIT for a new upload, the
// session a resumed one left for a resume.
func (u *upload) begin(ctx, sctx context.Context, k *keyedRun, start *mediagwv1.UploadStart) (backend.Session, error) {
	spec := u.spec
	if k == nil {
		sess, err := u.e.cfg.Backend.Begin(sctx, u.caller.Auth, spec)
		if err != nil {
			return nil, err
		}
		u.begun(ctx, sess)
		return sess, nil
	}
	if k.entry == nil {
		return k.beginNew(ctx, sctx, u, start)
	}
	return k.beginResume(ctx, sctx, u)
}

// prepare validates the start message and sets up the upload's spec and
// digest.
func (u *upload) prepare(ctx context.Context, start *mediagwv1.UploadStart) error {
	var err error
	if u.spec, err = u.e.validateStart(start); err != nil {
		return err
	}
	if d := start.GetSha256(); d != "" {
		if u.want, err = hex.DecodeString(d); err != nil || len(u.want) != sha256.Size {
			return apierr.Invalidf("sha256 %s is not a hex SHA-256 digest (64 hex digits)", apierr.Quote(d))
		}
		u.digest = sha256.New()
	}
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attrMediaType.String(u.spec.MediaType), attrCategory.String(u.spec.Category),
		attrTotalBytes.Int64(u.spec.TotalBytes))
	u.e.tel.started.Add(ctx, 1, metric.WithAttributes(attrCategory.String(u.spec.Category), attrCaller.String(u.label)))
	return nil
}

// admit asks the callers policy whether the upload may go on, before
// anything reaches X: the caller's permissions, the account it uses, its
// quotas. base is where this life of the upload starts (a resume's
// committed bytes); only what follows it is charged.
func (u *upload) admit(ctx context.Context, account string, base int64) error {
	u.base = base
	t, err := u.e.cfg.Policies.Admit(&u.caller, account, u.spec, base)
	if err != nil {
		return err
	}
	u.ticket = t
	trace.SpanFromContext(ctx).SetAttributes(attrAccount.String(u.accountLabel()))
	return nil
}

// accountLabel names the X account of the upload in logs and spans.
func (u *upload) accountLabel() string {
	switch {
	case u.caller.Auth.Token != "":
		return "user-token"
	case u.caller.Auth.Account != "":
		return u.caller.Auth.Account
	}
	return policy.DefaultAccount
}

// head reads the first bytes, which must show the declared format before X
// sees anything. The body of an upload of unknown size (total_bytes 0) is
// spooled first, head and all: X's INIT needs the size. The spool file is
// then the upload's body, to be closed by the caller.
func (u *upload) head(ctx context.Context) ([]byte, io.ReadCloser, error) {
	unknown := u.spec.TotalBytes == 0
	n := min(int64(sniffLen), u.spec.TotalBytes)
	if unknown {
		n = sniffLen
	}
	head := make([]byte, n)
	k, err := io.ReadFull(u.src, head)
	head = head[:k]
	switch {
	case unknown && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		u.count(head)
		return nil, nil, u.short()
	case err != nil:
		return nil, nil, err
	}
	if unknown && k == 0 {
		return nil, nil, apierr.Invalidf("the body is empty")
	}
	if err := sniff(u.spec.MediaType, head); err != nil {
		u.count(head)
		return nil, nil, err
	}
	if !unknown {
		u.count(head)
		return u.inspectHead(ctx, head)
	}
	lim := min(u.e.limit(categoryEnum(u.spec.Category)), u.e.spool.limit)
	if m := u.ticket.MaxFile(); m > 0 {
		lim = min(lim, m)
	}
	body := io.MultiReader(bytes.NewReader(head), u.src)
	if u.insp.live() {
		// The whole media is read before INIT: inspected on its way to the
		// spool file, and decided before X sees anything.
		body = io.TeeReader(body, u.insp)
	}
	f, err := u.e.spool.take(body, lim)
	if err != nil {
		return nil, nil, err
	}
	// What follows the media (a multipart body's closing boundary) is
	// checked once it was read to its end, before anything reaches X.
	if err := u.src.End(); err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	if err := u.ticket.Sized(f.size); err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	u.spec.TotalBytes = f.size
	trace.SpanFromContext(ctx).SetAttributes(attrTotalBytes.Int64(f.size), attrSpooled.Bool(true))
	if err := u.judgeSpooled(ctx); err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return nil, f, nil
}

// begun records the session X opened (or that was resumed).
func (u *upload) begun(ctx context.Context, sess backend.Session) {
	u.mediaID = sess.MediaID()
	u.info = sess.Info()
	u.segPlan = u.info.Plan
	if len(u.segPlan) == 0 {
		u.segPlan = backend.Plan{{From: 0, Size: u.info.SegmentSize}}
	}
	trace.SpanFromContext(ctx).SetAttributes(attrMediaID.String(u.mediaID), attrSegmentSize.Int64(u.info.SegmentSize),
		attrSegments.Int(u.info.Segments), attrParallelism.Int(u.info.Parallelism))
}

// respond remembers the media's state and builds the response.
func (u *upload) respond(media backend.Media) *mediagwv1.UploadResponse {
	u.e.cfg.Relay.Remember(u.caller, media)
	return &mediagwv1.UploadResponse{
		MediaId:          media.ID,
		MediaKey:         media.Key,
		Size:             media.Size,
		ExpiresAfterSecs: media.ExpiresAfterSecs,
		Processing:       relay.ToProto(media),
		Inspection:       u.insp.proto(u.insp.violationsOf()),
	}
}

// pump hands the head and the rest of the media to the session (from the
// spool file when the upload was spooled, else from the source), then
// finishes it once exactly total_bytes arrived. FINALIZE runs under sctx,
// the session's context.
func (u *upload) pump(ctx, sctx context.Context, sess backend.Session, head []byte, spooled io.Reader) (backend.Media, error) {
	u.tally(head[min(u.tallied, len(head)):])
	if _, err := sess.Write(head); err != nil {
		return backend.Media{}, err
	}
	sink := &meteredSession{u: u, sess: sess}
	var err error
	if spooled != nil {
		_, err = sink.ReadFrom(spooled)
	} else {
		err = u.src.Deliver(sink)
	}
	// Bytes past total_bytes never reach X (the session refuses them); the
	// caller learns it in the service's words.
	if u.received > u.spec.TotalBytes {
		return backend.Media{}, tooMuch(u.spec.TotalBytes)
	}
	if err != nil {
		return backend.Media{}, err
	}
	if u.received != u.spec.TotalBytes {
		return backend.Media{}, u.short()
	}
	if spooled == nil {
		if err := u.src.End(); err != nil {
			return backend.Media{}, err
		}
	}
	if err := u.judgeEnd(ctx); err != nil {
		return backend.Media{}, err
	}
	if u.digest != nil {
		if got := u.digest.Sum(nil); !bytes.Equal(got, u.want) {
			return backend.Media{}, apierr.Invalidf("sha256 mismatch: the %d bytes received hash to %x, the start message declared %x; the upload was not finalized",
				u.received, got, u.want)
		}
	}
	if err := u.rec.finalizing(ctx); err != nil {
		return backend.Media{}, err
	}
	return sess.Finish(sctx)
}

// sent is what of this life of the upload may have reached X: nothing
// before INIT (or a resume's session).
func (u *upload) sent() int64 {
	if u.mediaID == "" {
		return 0
	}
	return u.received - u.base
}
