// Command mediagw is the media upload front for X: a gRPC service (and a
// REST gateway in front of it) that streams media bytes into X's
// INIT/APPEND/FINALIZE calls and relays X's processing status.
//
// It talks to the X API at --x-api-url, or, with --emulator, to a built-in
// X emulator (demos and tests: no X account needed, media ids are fake);
// with neither it refuses to start. The package holds the flags, the
// wiring of the packages under service/ and upstream/, and the signal
// handling. Run `mediagw -h` for the flags; each has an environment twin
// (--x-token is MEDIAGW_X_TOKEN); docs/configuration.md lists them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"google.golang.org/grpc/grpclog"

	"github.com/mediagw/mediagw/service/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mediagw:", err)
		os.Exit(1)
	}
}

// run parses the configuration, starts mediagw and serves until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.ShowVersion {
		_, err := fmt.Fprintln(stdout, "mediagw", buildinfo.String())
		return err
	}
	log, err := newLogger(cfg, stdout)
	if err != nil {
		return err
	}
	grpclog.SetLoggerV2(grpcLogger{log.With("component", "grpc")})
	tuneGC(cfg, getenv, log)
	tel, err := setupTelemetry(ctx, getenv)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tel.shutdown(sctx); err != nil {
			log.Warn("telemetry shutdown", "error", err.Error())
		}
	}()
	a, err := newApp(ctx, cfg, log, tel)
	if err != nil {
		return err
	}
	return a.serve(ctx)
}

// tuneGC sizes the collector for mediagw's memory profile, unless the
// operator set GOGC or GOMEMLIMIT. What uploads hold is segment buffers
// (--max-in-flight of them at most, reused); what they make is short-lived
// message garbage. Collecting at 50% growth instead of 100% keeps one
// upload's process near 60 MiB, and a soft limit a little above the
// buffer budget makes the collector work harder before many uploads push
// the heap past what they can hold.
func tuneGC(cfg *config, getenv func(string) string, log *slog.Logger) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	if getenv("GOMEMLIMIT") == "" {
		// Segment buffers, and the messages being copied into them.
		limit := int64(cfg.MaxInFlight)*(int64(cfg.SegmentSize)+int64(cfg.MaxMessage)) + 192<<20
		debug.SetMemoryLimit(limit)
		log.Debug("soft memory limit", "bytes", limit)
	}
}

func newLogger(cfg *config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(traceHandler{slog.NewTextHandler(w, opts)}), nil
	}
	return slog.New(traceHandler{slog.NewJSONHandler(w, opts)}), nil
}
