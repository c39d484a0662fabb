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
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "mediagw/gen/mediagw/v1"
)

type uploadStream = grpc.ClientStreamingServer[mediagwv1.UploadRequest, mediagwv1.UploadResponse]

// Upload implements mediagw.v1.MediaUploadService. Everything that can be
// checked without X (the start message, the size limits, the first bytes)
// is checked before INIT; afterwards chunks go straight into the session,
// which cuts them into segments.
func (s *Server) Upload(stream uploadStream) error {
	ctx, span := s.tel.tracer.Start(stream.Context(), "upload")
	defer span.End()
	u := &upload{s: s, stream: stream, started: time.Now(), msgs: make(chan received), done: make(chan struct{})}
	s.tel.inFlight.Add(ctx, 1)
	defer s.tel.inFlight.Add(ctx, -1)
	go u.receive()
	defer close(u.done)
	resp, err := u.run(ctx)
	err = toStatus(err)
	u.finish(ctx, span, err)
	if err != nil {
		return err
	}
	return stream.SendAndClose(resp)
}

// upload is the state of one Upload call.
type upload struct {
	s        *Server
	stream   uploadStream
	started  time.Time
	spec     Spec
	mediaID  string
	received int64
	info     SessionInfo // zero until INIT succeeded

	// want is the SHA-256 the caller declared, digest the running hash of
	// the bytes received; both nil when the caller declared none.
	want   []byte
	digest hash.Hash

	// The stream is read by receive, so that waiting for the caller can
	// time out (Config.IdleTimeout): a stalled caller must not keep its
	// segment buffer, which other uploads may be waiting for.
	msgs chan received
	done chan struct{} // closed when Upload returns
	idle *time.Timer
}

// received is one Recv result.
type received struct {
	msg *mediagwv1.UploadRequest
	err error
}

// receive reads the stream until it ends or Upload returns.
func (u *upload) receive() {
	for {
		msg, err := u.stream.Recv()
		select {
		case u.msgs <- received{msg, err}:
		case <-u.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// recv returns the next message, or fails when the caller sent nothing for
// IdleTimeout.
func (u *upload) recv() (*mediagwv1.UploadRequest, error) {
	if u.idle == nil {
		u.idle = time.NewTimer(u.s.cfg.IdleTimeout)
	} else {
		u.idle.Reset(u.s.cfg.IdleTimeout)
	}
	select {
	case r := <-u.msgs:
		return r.msg, r.err
	case <-u.idle.C:
		return nil, &inputError{code: grpccodes.DeadlineExceeded,
			msg: fmt.Sprintf("no data from the caller for %s: upload abandoned after %d of %d bytes", u.s.cfg.IdleTimeout, u.received, u.spec.TotalBytes)}
	}
}

func (u *upload) run(ctx context.Context) (*mediagwv1.UploadResponse, error) {
	first, err := u.recv()
	if errors.Is(err, io.EOF) {
		return nil, invalidf("the stream ended before its start message")
	}
	if err != nil {
		return nil, err
	}
	start := first.GetStart()
	if start == nil {
		return nil, invalidf("the first message must be start, not a chunk")
	}
	if u.spec, err = u.s.validateStart(start); err != nil {
		return nil, err
	}
	if d := start.GetSha256(); d != "" {
		if u.want, err = hex.DecodeString(d); err != nil || len(u.want) != sha256.Size {
			return nil, invalidf("sha256 %q is not a hex SHA-256 digest (64 hex digits)", d)
		}
		u.digest = sha256.New()
	}
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attrMediaType.String(u.spec.MediaType), attrCategory.String(u.spec.Category),
		attrTotalBytes.Int64(u.spec.TotalBytes))
	u.s.tel.started.Add(ctx, 1, metric.WithAttributes(attrCategory.String(u.spec.Category)))

	// Hold the first chunks until the format can be checked.
	want := min(int64(sniffLen), u.spec.TotalBytes)
	var held [][]byte
	for u.received < want {
		chunk, err := u.next()
		if errors.Is(err, io.EOF) {
			return nil, u.short()
		}
		if err != nil {
			return nil, err
		}
		held = append(held, chunk)
	}
	if err := sniff(u.spec.MediaType, head(held, int(want))); err != nil {
		return nil, err
	}

	auth := authFrom(ctx)
	sess, err := u.s.backend.Begin(ctx, auth, u.spec)
	if err != nil {
		return nil, err
	}
	u.mediaID = sess.MediaID()
	u.info = sess.Info()
	span.SetAttributes(attrMediaID.String(u.mediaID), attrSegmentSize.Int64(u.info.SegmentSize),
		attrSegments.Int(u.info.Segments), attrParallelism.Int(u.info.Parallelism))
	media, err := u.pump(ctx, sess, held)
	u.info = sess.Info()
	if err != nil {
		sess.Abort(err)
		return nil, err
	}
	u.s.status.remember(auth, media)
	return &mediagwv1.UploadResponse{
		MediaId:          media.ID,
		MediaKey:         media.Key,
		Size:             media.Size,
		ExpiresAfterSecs: media.ExpiresAfterSecs,
		Processing:       toProto(media),
	}, nil
}

// pump hands the held chunks and every later one to the session, then
// finishes it once exactly total_bytes arrived.
func (u *upload) pump(ctx context.Context, sess Session, held [][]byte) (Media, error) {
	for _, c := range held {
		if _, err := sess.Write(c); err != nil {
			return Media{}, err
		}
	}
	for {
		chunk, err := u.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Media{}, err
		}
		if _, err := sess.Write(chunk); err != nil {
			return Media{}, err
		}
	}
	if u.received != u.spec.TotalBytes {
		return Media{}, u.short()
	}
	if u.digest != nil {
		if got := u.digest.Sum(nil); !bytes.Equal(got, u.want) {
			return Media{}, invalidf("sha256 mismatch: the %d bytes received hash to %x, the start message declared %x; the upload was not finalized",
				u.received, got, u.want)
		}
	}
	return sess.Finish(ctx)
}

// next receives the next chunk and counts it; more bytes than total_bytes
// fail at once, before the excess reaches the session.
func (u *upload) next() ([]byte, error) {
	for {
		msg, err := u.recv()
		if err != nil {
			return nil, err
		}
		if msg.GetStart() != nil {
			return nil, invalidf("start must be sent once, as the first message")
		}
		chunk := msg.GetChunk()
		if len(chunk) == 0 {
			continue
		}
		if u.received+int64(len(chunk)) > u.spec.TotalBytes {
			return nil, invalidf("received more than total_bytes (%d)", u.spec.TotalBytes)
		}
		u.received += int64(len(chunk))
		if u.digest != nil {
			u.digest.Write(chunk)
		}
		return chunk, nil
	}
}

func (u *upload) short() error {
	return invalidf("received %d of %d bytes", u.received, u.spec.TotalBytes)
}

// finish records the outcome of an upload: its metrics, its span's status
// and the one summary log line.
func (u *upload) finish(ctx context.Context, span trace.Span, err error) {
	cat := attrCategory.String(u.spec.Category)
	result := status.Code(err).String()
	u.s.tel.bytesReceived.Add(ctx, u.received)
	u.s.tel.duration.Record(ctx, time.Since(u.started).Seconds(), metric.WithAttributes(cat, attrResult.String(result)))
	attrs := []slog.Attr{
		slog.String("media_type", u.spec.MediaType),
		slog.String("media_category", u.spec.Category),
		slog.Int64("total_bytes", u.spec.TotalBytes),
		slog.Int64("received_bytes", u.received),
		slog.Duration("duration", time.Since(u.started)),
	}
	if u.mediaID != "" {
		attrs = append(attrs, slog.String("media_id", u.mediaID), slog.Int("segments", u.info.Segments),
			slog.Int64("segment_size", u.info.SegmentSize), slog.Int64("retries", u.info.Retries))
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
		u.s.tel.failed.Add(ctx, 1, metric.WithAttributes(cat, attrResult.String(result)))
		span.SetStatus(codes.Error, result)
		attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
	} else {
		u.s.tel.completed.Add(ctx, 1, metric.WithAttributes(cat))
	}
	attrs = append(attrs, slog.String("outcome", result))
	u.s.log.LogAttrs(ctx, level, "upload", attrs...)
}

// head returns the first n bytes of the chunks without copying when the
// first chunk holds them all.
func head(chunks [][]byte, n int) []byte {
	if len(chunks) > 0 && len(chunks[0]) >= n {
		return chunks[0][:n]
	}
	b := make([]byte, 0, n)
	for _, c := range chunks {
		b = append(b, c[:min(len(c), n-len(b))]...)
	}
	return b
}
