package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// The bench's own servers, each run as a process of its own by re-executing
// the bench binary with -serve, so that its CPU time and memory are
// measured apart from the bench's and mediagw's.
const (
	roleSink    = "sink"    // the minimal X (sink.go)
	roleRelay   = "relay"   // the bare relay (relay.go)
	roleDiscard = "discard" // the far end of the loopback hop (relay.go)
)

// isServe reports whether args ask for one of the bench's own servers.
func isServe(args []string) bool {
	return len(args) > 0 && (args[0] == "-serve" || args[0] == "--serve" ||
		strings.HasPrefix(args[0], "-serve=") || strings.HasPrefix(args[0], "--serve="))
}

// serve runs one of the bench's servers until ctx ends. It prints
// "bench-ROLE listening on http://ADDR" once it accepts connections.
func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench -serve", flag.ContinueOnError)
	role := fs.String("serve", "", "sink, relay, discard or grpcdiscard")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	dig := fs.String("digest", digestXXH64, "sink: digest of each media's bytes, xxh64 or sha256")
	tok := fs.String("token", token, "bearer token the sink accepts, and the relay sends")
	latency := fs.Duration("latency", 0, "sink: latency added to every X request")
	maxSeg := fs.String("max-segment", "5MiB", "sink: largest APPEND media; larger is 413")
	maxHeld := fs.String("max-held", "2GiB", "sink: most bytes of out-of-order segments held; more is 503")
	xURL := fs.String("x-url", "", "relay: the X to relay to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	seg, err1 := xfake.ParseSize(*maxSeg)
	held, err2 := xfake.ParseSize(*maxHeld)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	var h http.Handler
	switch *role {
	case roleGRPCDiscard:
		return serveGRPCDiscard(ctx, *addr)
	case roleSink:
		if *dig != digestXXH64 && *dig != digestSHA256 {
			return fmt.Errorf("-digest: want xxh64 or sha256, got %q", *dig)
		}
		s := newSink(*dig, *tok, *latency, seg, held)
		go func() {
			t := time.NewTicker(10 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					s.sweep(2 * time.Minute)
				}
			}
		}()
		h = s.handler()
	case roleRelay:
		if *xURL == "" {
			return errors.New("-serve relay needs -x-url")
		}
		h = newRelay(*xURL, *tok)
	case roleDiscard:
		h = http.HandlerFunc(discard)
	default:
		return fmt.Errorf("-serve: unknown role %q (want sink, relay, discard or grpcdiscard)", *role)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stdout, "bench-%s listening on http://%s\n", *role, l.Addr())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveReady matches the start-up line of a -serve process of role.
func serveReady(role string) func(string) (string, bool) {
	return func(line string) (string, bool) {
		_, addr, ok := strings.Cut(line, "bench-"+role+" listening on ")
		return strings.TrimSpace(addr), ok
	}
}
