// Command xfake runs the X media-upload emulator (package
// github.com/mediagw/mediagw/upstream/xfake) as a standalone HTTP server.
//
// Usage:
//
//	xfake [--addr 127.0.0.1:8090] [--token T]... [--latency 50ms] [--bandwidth 40MB]
//	      [--fault-rate 0.1] [--processing-time 5s] [--max-segment 5MiB] [--seed 1] ...
//
// Run `xfake --help` for every flag. It prints "xfake listening on
// http://ADDR" once it accepts connections and shuts down gracefully on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "xfake:", err)
		os.Exit(1)
	}
}

// shutdownGrace is how long in-flight requests get to finish on shutdown
// before stalls are ended and connections closed.
const shutdownGrace = 5 * time.Second

// run serves the emulator configured by args until ctx is done. It writes
// the listening line and the logs to stdout.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	x := xfake.New(cfg.opts)
	defer x.Close()
	l, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: x, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "xfake listening on http://%s\n", l.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(x.Listener(l)) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	cfg.opts.Logger.Info("xfake shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = x.Close() // ends stalled requests
		_ = srv.Close()
	}
	return x.Close()
}
