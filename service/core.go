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
	"google.golang.org/grpc/status"

	mediagwv1 "mediagw/gen/mediagw/v1"
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

// uploadFrom is the one upload path of both transports. start reads the
// start message that describes the media, and body delivers its bytes. Everything that can be checked
// without X (the start message, the size limits, the first bytes) is
// checked before INIT; afterwards the bytes go straight into the session,
// which cuts them into segments.
//
// A body that implements io.WriterTo (the gRPC stream, whose messages
// already hold the bytes) writes them into the session, which copies them
// once into a segment buffer; any other body (a REST request body) is
// read by the session straight into its segment buffers.
func (s *Server) uploadFrom(ctx context.Context, c Caller, transport string, start func() (*mediagwv1.UploadStart, error), body io.Reader) (*mediagwv1.UploadResponse, error) {
	ctx, span := s.tel.tracer.Start(ctx, "upload", trace.WithAttributes(attrTransport.String(transport)))
	defer span.End()
	if c.ID != "" {
		span.SetAttributes(attrCallerID.String(c.ID))
	}
	s.tel.inFlight.Add(ctx, 1)
	defer s.tel.inFlight.Add(ctx, -1)
	u := &upload{s: s, caller: c, started: time.Now()}
	resp, err := u.run(ctx, start, body)
	err = toStatus(err)
	u.ticket.done(u.sent())
	u.finish(ctx, span, err)
	return resp, err
}

// upload is the state of one upload.
type upload struct {
	s        *Server
	caller   Caller
	started  time.Time
	spec     Spec
	mediaID  string
	received int64
	info     SessionInfo // zero until INIT succeeded
	// ticket is the upload's hold on its caller's quotas, nil until the
	// callers policy admitted it.
	ticket *ticket

	// want is the SHA-256 the caller declared, digest the running hash of
	// the bytes received; both nil when the caller declared none.
	want   []byte
	digest hash.Hash
}

func (u *upload) run(ctx context.Context, readStart func() (*mediagwv1.UploadStart, error), body io.Reader) (*mediagwv1.UploadResponse, error) {
	start, err := readStart()
	if err != nil {
		return nil, err
	}
	if u.spec, err = u.s.validateStart(start); err != nil {
		return nil, err
	}
	if u.ticket, err = u.s.policy.admit(&u.caller, start.GetAccount(), u.spec); err != nil {
		return nil, err
	}
	if d := start.GetSha256(); d != "" {
		if u.want, err = hex.DecodeString(d); err != nil || len(u.want) != sha256.Size {
			return nil, invalidf("sha256 %s is not a hex SHA-256 digest (64 hex digits)", quote(d))
		}
		u.digest = sha256.New()
	}
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attrMediaType.String(u.spec.MediaType), attrCategory.String(u.spec.Category),
		attrTotalBytes.Int64(u.spec.TotalBytes), attrAccount.String(u.caller.accountLabel()))
	u.s.tel.started.Add(ctx, 1, metric.WithAttributes(attrCategory.String(u.spec.Category), attrCaller.String(u.caller.label)))

	// The first bytes must show the declared format before X sees anything.
	var headBuf [sniffLen]byte
	head := headBuf[:min(int64(sniffLen), u.spec.TotalBytes)]
	n, err := io.ReadFull(body, head)
	u.count(head[:n])
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, u.short()
	}
	if err != nil {
		return nil, err
	}
	if err := sniff(u.spec.MediaType, head); err != nil {
		return nil, err
	}

	sess, err := u.s.backend.Begin(ctx, u.caller.Auth, u.spec)
	if err != nil {
		return nil, err
	}
	u.mediaID = sess.MediaID()
	u.info = sess.Info()
	span.SetAttributes(attrMediaID.String(u.mediaID), attrSegmentSize.Int64(u.info.SegmentSize),
		attrSegments.Int(u.info.Segments), attrParallelism.Int(u.info.Parallelism))
	media, err := u.pump(ctx, sess, head, body)
	u.info = sess.Info()
	if err != nil {
		sess.Abort(err)
		return nil, err
	}
	u.s.status.remember(u.caller, media)
	return &mediagwv1.UploadResponse{
		MediaId:          media.ID,
		MediaKey:         media.Key,
		Size:             media.Size,
		ExpiresAfterSecs: media.ExpiresAfterSecs,
		Processing:       toProto(media),
	}, nil
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
	return sess.Finish(ctx)
}

// sent is what of the upload may have reached X: nothing before INIT.
func (u *upload) sent() int64 {
	if u.mediaID == "" {
		return 0
	}
	return u.received
}

// count records bytes received from the caller.
func (u *upload) count(p []byte) {
	u.received += int64(len(p))
	if u.digest != nil {
		u.digest.Write(p)
	}
}

func (u *upload) short() error {
	return invalidf("received %d of %d bytes", u.received, u.spec.TotalBytes)
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
	n, err := m.sess.Write(p)
	m.u.count(p[:n])
	return n, err
}

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
func (u *upload) finish(ctx context.Context, span trace.Span, err error) {
	if u.caller.label == "" {
		u.caller.label = u.s.policy.label(u.caller.ID)
	}
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
	} else {
		u.s.tel.completed.Add(ctx, 1, metric.WithAttributes(cat, caller))
	}
	attrs = append(attrs, slog.String("outcome", result))
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
