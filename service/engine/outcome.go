package engine

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/status"
)

// finish records the outcome of an upload: its metrics, its span's status
// and the one summary log line.
func (u *upload) finish(ctx context.Context, span trace.Span, err, raw error) {
	cat := attrCategory.String(u.spec.Category)
	caller := attrCaller.String(u.label)
	result := status.Code(err).String()
	u.e.tel.bytesReceived.Add(ctx, u.received, metric.WithAttributes(caller))
	u.e.tel.duration.Record(ctx, time.Since(u.started).Seconds(), metric.WithAttributes(cat, caller, attrResult.String(result)))
	var attrs []slog.Attr
	if u.caller.ID != "" {
		attrs = append(attrs, slog.String("caller", u.caller.ID))
	}
	if u.ticket != nil {
		attrs = append(attrs, slog.String("account", u.accountLabel()))
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
		u.e.tel.failed.Add(ctx, 1, metric.WithAttributes(cat, caller, attrResult.String(result)))
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
		u.e.tel.completed.Add(ctx, 1, metric.WithAttributes(cat, caller))
	}
	if vs := u.insp.violations(u.refused); len(vs) > 0 && u.insp.live() {
		reasons := make([]string, 0, len(vs))
		for _, v := range vs {
			reasons = append(reasons, v.Reason)
		}
		attrs = append(attrs, slog.String("media_violations", strings.Join(reasons, ",")))
	}
	attrs = append(attrs, slog.String("outcome", result))
	if u.outcome != "" {
		attrs = append(attrs, slog.String("ledger", u.outcome)) // replayed, resumed, interrupted
	}
	u.e.log.LogAttrs(ctx, level, "upload", attrs...)
}
