package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/grpclog"
)

// grpcLogger routes what grpc-go and grpc-gateway log (through grpclog)
// into mediagw's structured logger, so that every line mediagw writes is
// one JSON object. grpc's informational chatter is debug here.
type grpcLogger struct{ log *slog.Logger }

var _ grpclog.LoggerV2 = grpcLogger{}

func (g grpcLogger) Info(args ...any)                 { g.log.Debug(fmt.Sprint(args...)) }
func (g grpcLogger) Infoln(args ...any)               { g.log.Debug(fmt.Sprint(args...)) }
func (g grpcLogger) Infof(format string, args ...any) { g.log.Debug(fmt.Sprintf(format, args...)) }
func (g grpcLogger) Warning(args ...any)              { g.log.Warn(fmt.Sprint(args...)) }
func (g grpcLogger) Warningln(args ...any)            { g.log.Warn(fmt.Sprint(args...)) }
func (g grpcLogger) Warningf(format string, args ...any) {
	g.log.Warn(fmt.Sprintf(format, args...))
}
func (g grpcLogger) Error(args ...any)                 { g.log.Error(fmt.Sprint(args...)) }
func (g grpcLogger) Errorln(args ...any)               { g.log.Error(fmt.Sprint(args...)) }
func (g grpcLogger) Errorf(format string, args ...any) { g.log.Error(fmt.Sprintf(format, args...)) }
func (g grpcLogger) Fatal(args ...any)                 { g.log.Error(fmt.Sprint(args...)); os.Exit(1) }
func (g grpcLogger) Fatalln(args ...any)               { g.log.Error(fmt.Sprint(args...)); os.Exit(1) }
func (g grpcLogger) Fatalf(format string, args ...any) {
	g.log.Error(fmt.Sprintf(format, args...))
	os.Exit(1)
}

// V reports whether verbosity level l is logged: only grpc's level 0.
func (g grpcLogger) V(l int) bool { return l <= 0 }

// sampledHandler passes at most a few records a second to its handler (the
// HTTP server's refused TLS handshakes and bad requests: a scanner would
// otherwise write one line each), and says on the next record that passes
// how many were left out.
type sampledHandler struct {
	slog.Handler
	limit      *rate.Limiter
	suppressed *atomic.Int64
}

func sampled(h slog.Handler, perSecond float64, burst int) slog.Handler {
	return sampledHandler{Handler: h, limit: rate.NewLimiter(rate.Limit(perSecond), burst), suppressed: new(atomic.Int64)}
}

func (h sampledHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.limit.Allow() {
		h.suppressed.Add(1)
		return nil
	}
	if n := h.suppressed.Swap(0); n > 0 {
		r.AddAttrs(slog.Int64("lines_not_logged", n))
	}
	return h.Handler.Handle(ctx, r)
}

func (h sampledHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return sampledHandler{Handler: h.Handler.WithAttrs(a), limit: h.limit, suppressed: h.suppressed}
}

func (h sampledHandler) WithGroup(name string) slog.Handler {
	return sampledHandler{Handler: h.Handler.WithGroup(name), limit: h.limit, suppressed: h.suppressed}
}
