package main

import (
	"fmt"
	"log/slog"
	"os"

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
