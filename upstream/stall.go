package upstream

import (
	"context"
	"io"
	"net"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// stallError is why an attempt was abandoned: nothing moved on its
// connection for Config.StallTimeout.
type stallError struct {
	after time.Duration
	cause error // what the transport reported once the attempt was cancelled
}

// Error implements error.
func (e *stallError) Error() string {
	s := "no progress for " + e.after.String()
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Timeout reports true, like net.Error.
func (e *stallError) Timeout() bool { return true }

// watchdog abandons an attempt when nothing moves for the stall timeout.
// Moving means, on Linux, that the peer acknowledged request bytes or
// sent response bytes (the kernel's per-connection counters, so that a
// large write blocked in the kernel, or a body still draining from the
// socket buffer, counts as long as the network carries it); everywhere,
// any step net/http reports (connection, headers or body written, first
// response byte) and every read or write of the body or the response.
// A slow connection that keeps moving is never cut; a dead one is noticed
// within the timeout and an eighth.
type watchdog struct {
	stall  time.Duration
	cancel context.CancelFunc
	events atomic.Uint64 // steps, reads and writes seen so far

	mu    sync.Mutex
	tcp   tcpCounters // of the attempt's connection; nil until known or where unsupported
	seen  [3]uint64   // events, bytes acked, bytes received at the last change
	last  time.Time   // when they last changed
	timer *time.Timer
	done  bool
	fired bool
}

// watch starts a watchdog for one attempt; cancel ends the attempt.
func watch(stall time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{stall: stall, cancel: cancel, last: time.Now()}
	w.mu.Lock()
	w.timer = time.AfterFunc(w.every(), w.check)
	w.mu.Unlock()
	return w
}

// every is how often the watchdog looks: a stall is noticed between
// StallTimeout and an eighth more.
func (w *watchdog) every() time.Duration { return max(w.stall/8, 5*time.Millisecond) }

// moved records progress seen by the application.
func (w *watchdog) moved() { w.events.Add(1) }

func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.sample()
	if time.Since(w.last) >= w.stall {
		w.done, w.fired = true, true
		w.cancel()
		return
	}
	w.timer.Reset(w.every())
}

// sample reads the counters and notes a change. Called with mu held.
func (w *watchdog) sample() {
	cur := [3]uint64{w.events.Load(), w.seen[1], w.seen[2]}
	if w.tcp != nil {
		if acked, received, ok := w.tcp.counters(); ok {
			cur[1], cur[2] = acked, received
		}
	}
	if cur != w.seen {
		w.seen, w.last = cur, time.Now()
	}
}

// stop ends the watchdog and reports whether it had fired.
func (w *watchdog) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	w.timer.Stop()
	return w.fired
}

// useConn starts following the kernel counters of c.
func (w *watchdog) useConn(c net.Conn) {
	tc := tcpCountersOf(c)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tcp = tc
	if tc != nil {
		if acked, received, ok := tc.counters(); ok {
			w.seen[1], w.seen[2] = acked, received
		}
	}
	w.events.Add(1)
}

// trace reports net/http's steps to the watchdog: a connection to use
// (new or reused: setting one up, DNS, TCP and TLS, is one step), the
// request written, the answer begun.
func (w *watchdog) trace() *httptrace.ClientTrace {
	step := w.moved
	return &httptrace.ClientTrace{
		GotConn:              w.gotConn,
		WroteHeaders:         step,
		WroteRequest:         func(httptrace.WroteRequestInfo) { step() },
		GotFirstResponseByte: step,
	}
}

func (w *watchdog) gotConn(i httptrace.GotConnInfo) { w.useConn(i.Conn) }

// reader counts the reads of a response body as progress.
func (w *watchdog) reader(r io.Reader) io.Reader { return &watchedReader{r: r, w: w} }

type watchedReader struct {
	r io.Reader
	w *watchdog
}

func (r *watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.moved()
	}
	return n, err
}

// tcpCounters reads a TCP connection's kernel counters: bytes the peer
// acknowledged and bytes received.
type tcpCounters interface {
	counters() (acked, received uint64, ok bool)
}

// netConnOf unwraps TLS and this package's connection wrappers down to the
// TCP connection, or returns nil.
func netConnOf(c net.Conn) *net.TCPConn {
	for range 8 {
		switch x := c.(type) {
		case *net.TCPConn:
			return x
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
	return nil
}
