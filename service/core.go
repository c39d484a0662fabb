package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// Transports, as the upload.transport span attribute names them.
const (
	transportGRPC = "grpc"
	transportREST = "rest"
)

// Caller is who makes a call, as its transport established it.
type Caller struct {
	// ID is the authenticated caller ([Identity.ID]); empty when mediagw
	// runs without authentication.
	ID string
	// Auth is the X credential the call uses: the caller's own token, or
	// the account the callers policy resolved for an upload.
	Auth Auth
	// label is the caller's bounded metric label, set by the policy.
	label string
}

// accountLabel names the X account of c in logs and spans.
func (c Caller) accountLabel() string {
	switch {
	case c.Auth.Token != "":
		return "user-token"
	case c.Auth.Account != "":
		return c.Auth.Account
	}
	return DefaultAccount
}

// bodyEnder is implemented by bodies whose framing must be checked once
// the media ended and before anything is finalized: a multipart body must
// close with its boundary, and nothing may follow the media part.
type bodyEnder interface {
	end() error
}

// uploadOptions describe how a transport delivers an upload.
type uploadOptions struct {
	transport string
	// bodyLen is the body's length when the transport knows it (a REST
	// Content-Length), else -1.
	bodyLen int64
}

// interrupter is implemented by bodies whose blocked reads can be ended
// when the upload must stop (a resume takes it over, mediagw drains).
type interrupter interface {
	interrupt()
}

// uploadFrom is the one upload path of both transports. start reads the
// start message that describes the media, and body delivers its bytes.
// Everything that can be checked without X (the start message, the size
// limits, the first bytes) is checked before INIT; afterwards the bytes go
// straight into the session, which cuts them into segments.
//
// A body that implements io.WriterTo (the gRPC stream, whose messages
// already hold the bytes) writes them into the session, which copies them
// once into a segment buffer; any other body (a REST request body) is
// read by the session straight into its segment buffers.
func (s *Server) uploadFrom(ctx context.Context, c Caller, o uploadOptions, start func() (*mediagwv1.UploadStart, error), body io.Reader) (*mediagwv1.UploadResponse, error) {
	ctx, span := s.tel.tracer.Start(ctx, "upload", trace.WithAttributes(attrTransport.String(o.transport)))
	defer span.End()
	if c.ID != "" {
		span.SetAttributes(attrCallerID.String(c.ID))
	}
	s.tel.inFlight.Add(ctx, 1)
	defer s.tel.inFlight.Add(ctx, -1)
	// The upload stops when its caller goes, and when mediagw stops it
	// (drain past the timeout, a resume taking the upload over).
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(s.stopping, func() { cancel(errShuttingDown) })
	defer stop()
	if in, ok := body.(interrupter); ok {
		defer context.AfterFunc(ctx, in.interrupt)()
	}
	c.label = s.policy.label(c.ID)
	u := &upload{s: s, caller: c, opts: o, started: time.Now(), cancel: cancel}
	var resp *mediagwv1.UploadResponse
	release, raw := s.admit.enter(ctx)
	if raw == nil {
		resp, raw = u.run(ctx, start, body)
		release()
	}
	raw = stoppedBecause(ctx, raw)
	err := toStatus(raw)
	u.ticket.done(u.sent())
	u.finish(ctx, span, err, raw)
	return resp, err
}

// upload is the state of one upload.
type upload struct {
	s        *Server
	caller   Caller
	opts     uploadOptions
	started  time.Time
	cancel   context.CancelCauseFunc
	spec     Spec
	mediaID  string
	received int64
	info     SessionInfo // zero until INIT succeeded
	// ticket is the upload's hold on its caller's quotas, nil until the
	// callers policy admitted it; base is where this life of the upload
	// started (a resume's committed bytes).
	ticket *ticket
	base   int64

	// want is the SHA-256 the caller declared, digest the running hash of
	// the bytes received; both nil when the caller declared none.
	want   []byte
	digest hash.Hash

	// rec is the upload's ledger record when it has an idempotency key.
	rec *record
	// sessCtx, when set, is the session's context, which FINALIZE runs
	// under (see sessionContext).
	sessCtx context.Context
	// outcome says how the upload ended, for the log line: "" (as its
	// error says), replayed, resumed, interrupted.
	outcome string
}

func (u *upload) run(ctx context.Context, readStart func() (*mediagwv1.UploadStart, error), body io.Reader) (*mediagwv1.UploadResponse, error) {
	if err := u.s.ready(); err != nil {
		return nil, err
	}
	start, err := readStart()
	if err != nil {
		return nil, err
	}
	if start.GetIdempotencyKey() != "" || start.ResumeOffset != nil {
		return u.runKeyed(ctx, start, body)
	}
	head, body, done, err := u.accept(ctx, start, body)
	if err != nil {
		return nil, err
	}
	defer done()
	sess, err := u.s.backend.Begin(ctx, u.caller.Auth, u.spec)
	if err != nil {
		return nil, err
	}
	u.begun(ctx, sess)
	media, err := u.pump(ctx, sess, head, body)
	u.info = sess.Info()
	if err != nil {
		sess.Abort(err)
		return nil, err
	}
	return u.respond(media), nil
}

// accept does what comes before INIT: it validates start, admits the
// upload under the caller's policy and reads the first bytes (spooling a
// body of unknown size). done releases what the body holds (a spool file).
func (u *upload) accept(ctx context.Context, start *mediagwv1.UploadStart, body io.Reader) (head []byte, rest io.Reader, done func(), err error) {
	if err := u.prepare(ctx, start); err != nil {
		return nil, nil, nil, err
	}
	if err := u.admit(ctx, start.GetAccount(), 0); err != nil {
		return nil, nil, nil, err
	}
	if head, rest, err = u.head(ctx, body); err != nil {
		return nil, nil, nil, err
	}
	done = func() {}
	if c, ok := rest.(io.Closer); ok {
		done = func() { _ = c.Close() }
	}
	return head, rest, done, nil
}

// prepare validates the start message and sets up the upload's spec and
// digest.
func (u *upload) prepare(ctx context.Context, start *mediagwv1.UploadStart) error {
	var err error
	if u.spec, err = u.s.validateStart(start); err != nil {
		return err
	}
	if d := start.GetSha256(); d != "" {
		if u.want, err = hex.DecodeString(d); err != nil || len(u.want) != sha256.Size {
			return invalidf("sha256 %s is not a hex SHA-256 digest (64 hex digits)", quote(d))
		}
		u.digest = sha256.New()
	}
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attrMediaType.String(u.spec.MediaType), attrCategory.String(u.spec.Category),
		attrTotalBytes.Int64(u.spec.TotalBytes))
	u.s.tel.started.Add(ctx, 1, metric.WithAttributes(attrCategory.String(u.spec.Category), attrCaller.String(u.caller.label)))
	return nil
}

// admit asks the callers policy whether the upload may go on, before
// anything reaches X: the caller's permissions, the account it uses, its
// quotas. base is where this life of the upload starts (a resume's
// committed bytes); only what follows it is charged.
func (u *upload) admit(ctx context.Context, account string, base int64) error {
	u.base = base
	t, err := u.s.policy.admit(&u.caller, account, u.spec, base)
	if err != nil {
		return err
	}
	u.ticket = t
	trace.SpanFromContext(ctx).SetAttributes(attrAccount.String(u.caller.accountLabel()))
	return nil
}

// head reads the first bytes, which must show the declared format before X
// sees anything, and returns them with the body that follows. The body of
// an upload of unknown size (total_bytes 0) is spooled first: X's INIT
// needs the size. The returned body is then the spool file, head and all,
// to be closed by the caller.
func (u *upload) head(ctx context.Context, body io.Reader) ([]byte, io.Reader, error) {
	unknown := u.spec.TotalBytes == 0
	n := min(int64(sniffLen), u.spec.TotalBytes)
	if unknown {
		n = sniffLen
	}
	head := make([]byte, n)
	k, err := io.ReadFull(body, head)
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
		return nil, nil, invalidf("the body is empty")
	}
	if err := sniff(u.spec.MediaType, head); err != nil {
		u.count(head)
		return nil, nil, err
	}
	if !unknown {
		u.count(head)
		return head, body, nil
	}
	lim := min(u.s.limit(categoryEnum(u.spec.Category)), u.s.spool.limit)
	if m := u.ticket.maxFile(); m > 0 {
		lim = min(lim, m)
	}
	f, err := u.s.spool.take(io.MultiReader(bytes.NewReader(head), body), lim)
	if err != nil {
		return nil, nil, err
	}
	if err := u.ticket.sized(f.size); err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	u.spec.TotalBytes = f.size
	trace.SpanFromContext(ctx).SetAttributes(attrTotalBytes.Int64(f.size), attrSpooled.Bool(true))
	return nil, f, nil
}

// begun records the session X opened (or that was resumed).
func (u *upload) begun(ctx context.Context, sess Session) {
	u.mediaID = sess.MediaID()
	u.info = sess.Info()
	trace.SpanFromContext(ctx).SetAttributes(attrMediaID.String(u.mediaID), attrSegmentSize.Int64(u.info.SegmentSize),
		attrSegments.Int(u.info.Segments), attrParallelism.Int(u.info.Parallelism))
}

// respond remembers the media's state and builds the response.
func (u *upload) respond(media Media) *mediagwv1.UploadResponse {
	u.s.status.remember(u.caller, media)
	return &mediagwv1.UploadResponse{
		MediaId:          media.ID,
		MediaKey:         media.Key,
		Size:             media.Size,
		ExpiresAfterSecs: media.ExpiresAfterSecs,
		Processing:       toProto(media),
	}
}

// pump hands the head and the rest of the body to the session, then
// finishes it once exactly total_bytes arrived.
func (u *upload) pump(ctx context.Context, sess Session, head []byte, body io.Reader) (Media, error) {
	if _, err := sess.Write(head); err != nil {
		return Media{}, err
	}
	var err error
	if wt, ok := body.(io.WriterTo); ok {
		_, err = wt.WriteTo(&meteredSession{u: u, sess: sess})
	} else {
		_, err = sess.ReadFrom(&meteredBody{u: u, r: body})
	}
	// Bytes past total_bytes never reach X (the session refuses them); the
	// caller learns it in the service's words.
	if u.received > u.spec.TotalBytes {
		return Media{}, invalidf("received more than total_bytes (%d)", u.spec.TotalBytes)
	}
	if err != nil {
		return Media{}, err
	}
	if u.received != u.spec.TotalBytes {
		return Media{}, u.short()
	}
	if e, ok := body.(bodyEnder); ok {
		if err := e.end(); err != nil {
			return Media{}, err
		}
	}
	if u.digest != nil {
		if got := u.digest.Sum(nil); !bytes.Equal(got, u.want) {
			return Media{}, invalidf("sha256 mismatch: the %d bytes received hash to %x, the start message declared %x; the upload was not finalized",
				u.received, got, u.want)
		}
	}
	if u.rec != nil {
		if err := u.rec.finalizing(ctx); err != nil {
			return Media{}, err
		}
	}
	fctx := ctx
	if u.sessCtx != nil {
		fctx = u.sessCtx
	}
	return sess.Finish(fctx)
}

// sent is what of this life of the upload may have reached X: nothing
// before INIT (or a resume's session).
func (u *upload) sent() int64 {
	if u.mediaID == "" {
		return 0
	}
	return u.received - u.base
}

// count records bytes received from the caller. With a ledger record, the
// hash state is kept at every segment boundary, for the record to store
// once the segment's APPEND is acknowledged.
func (u *upload) count(p []byte) {
	if u.digest == nil {
		u.received += int64(len(p))
		return
	}
	size := u.info.SegmentSize
	if u.rec == nil || size == 0 {
		u.received += int64(len(p))
		u.digest.Write(p)
		return
	}
	for len(p) > 0 {
		next := (u.received/size + 1) * size
		k := int(min(int64(len(p)), next-u.received))
		u.digest.Write(p[:k])
		u.received += int64(k)
		p = p[k:]
		if u.received%size == 0 {
			u.rec.hashAt(u.received, u.digest)
		}
	}
}

func (u *upload) short() error {
	return &inputError{code: grpccodes.InvalidArgument, resumable: true,
		msg: fmt.Sprintf("received %d of %d bytes", u.received, u.spec.TotalBytes)}
}

// meteredSession counts and hashes what a WriterTo body writes, and
// refuses bytes past total_bytes before they reach the session.
type meteredSession struct {
	u    *upload
	sess Session
}

func (m *meteredSession) Write(p []byte) (int, error) {
	if m.u.received+int64(len(p)) > m.u.spec.TotalBytes {
		m.u.received += int64(len(p))
		return 0, invalidf("received more than total_bytes (%d)", m.u.spec.TotalBytes)
	}
	// Counted (and hashed) before the session may send a segment: its
	// acknowledgement must find the hash state of its end.
	m.u.count(p)
	return m.sess.Write(p)
}

// ready waits for a buffer for the next bytes (see Session.Ready).
func (m *meteredSession) ready() error { return m.sess.Ready() }

// meteredBody counts and hashes what the session reads from a body, in
// the segment buffer it was read into.
type meteredBody struct {
	u *upload
	r io.Reader
}

func (m *meteredBody) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.u.count(p[:n])
	return n, err
}

// finish records the outcome of an upload: its metrics, its span's status
// and the one summary log line.
func (u *upload) finish(ctx context.Context, span trace.Span, err, raw error) {
	cat := attrCategory.String(u.spec.Category)
	caller := attrCaller.String(u.caller.label)
	result := status.Code(err).String()
	u.s.tel.bytesReceived.Add(ctx, u.received, metric.WithAttributes(caller))
	u.s.tel.duration.Record(ctx, time.Since(u.started).Seconds(), metric.WithAttributes(cat, caller, attrResult.String(result)))
	var attrs []slog.Attr
	if u.caller.ID != "" {
		attrs = append(attrs, slog.String("caller", u.caller.ID))
	}
	if u.ticket != nil {
		attrs = append(attrs, slog.String("account", u.caller.accountLabel()))
	}
	attrs = append(attrs,
		slog.String("media_type", u.spec.MediaType),
		slog.String("media_category", u.spec.Category),
		slog.Int64("total_bytes", u.spec.TotalBytes),
		slog.Int64("received_bytes", u.received),
		slog.Duration("duration", time.Since(u.started)),
	)
	if u.mediaID != "" {
		attrs = append(attrs, slog.String("media_id", u.mediaID), slog.Int("segments", u.info.Segments),
			slog.Int64("segment_size", u.info.SegmentSize), slog.Int64("retries", u.info.Retries))
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
		u.s.tel.failed.Add(ctx, 1, metric.WithAttributes(cat, caller, attrResult.String(result)))
		span.SetStatus(codes.Error, result)
		attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
		// Operators get the error's detail where it has more than the
		// caller's sentence (X's URL, the attempts, the last cause).
		var lv slog.LogValuer
		if errors.As(raw, &lv) {
			attrs = append(attrs, slog.Any("cause", lv))
		} else if raw != nil && raw.Error() != status.Convert(err).Message() {
			attrs = append(attrs, slog.String("cause", raw.Error()))
		}
	} else {
		u.s.tel.completed.Add(ctx, 1, metric.WithAttributes(cat, caller))
	}
	attrs = append(attrs, slog.String("outcome", result))
	if u.outcome != "" {
		attrs = append(attrs, slog.String("ledger", u.outcome)) // replayed, resumed, interrupted
	}
	u.s.log.LogAttrs(ctx, level, "upload", attrs...)
}

// maxEcho bounds how much of a caller's input an error message repeats.
const maxEcho = 64

// quote returns s quoted for an error message, cut to maxEcho bytes.
func quote(s string) string {
	if len(s) > maxEcho {
		return fmt.Sprintf("%q… (%d bytes)", s[:maxEcho], len(s))
	}
	return fmt.Sprintf("%q", s)
}
