package xfake

import (
	"context"
	"net"

	"golang.org/x/time/rate"
)

// Listener wraps l so that every accepted connection is capped at
// Options.Bandwidth bytes per second in each direction, with a token bucket
// per connection and direction. It returns l itself when Bandwidth is 0.
func (s *Server) Listener(l net.Listener) net.Listener {
	if s.opts.Bandwidth <= 0 {
		return l
	}
	return &limitedListener{Listener: l, bps: s.opts.Bandwidth}
}

type limitedListener struct {
	net.Listener
	bps int64
}

func (l *limitedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newLimitedConn(c, l.bps), nil
}

// limitedConn throttles Read and Write. Reads and writes are cut into pieces
// no larger than the bucket, so that a big buffer cannot jump the rate.
type limitedConn struct {
	net.Conn
	rd, wr *rate.Limiter
	burst  int
	ctx    context.Context
	cancel context.CancelFunc
}

func newLimitedConn(c net.Conn, bps int64) *limitedConn {
	burst := int(min(bps, 32<<10))
	ctx, cancel := context.WithCancel(context.Background())
	return &limitedConn{
		Conn:   c,
		rd:     rate.NewLimiter(rate.Limit(bps), burst),
		wr:     rate.NewLimiter(rate.Limit(bps), burst),
		burst:  burst,
		ctx:    ctx,
		cancel: cancel,
	}
}

func (c *limitedConn) Read(p []byte) (int, error) {
	if len(p) > c.burst {
		p = p[:c.burst]
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		_ = c.rd.WaitN(c.ctx, n) // fails only once the conn is closed
	}
	return n, err
}

func (c *limitedConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := min(len(p), c.burst)
		if err := c.wr.WaitN(c.ctx, chunk); err != nil {
			return written, net.ErrClosed
		}
		n, err := c.Conn.Write(p[:chunk])
		written += n
		if err != nil {
			return written, err
		}
		p = p[chunk:]
	}
	return written, nil
}

func (c *limitedConn) Close() error {
	c.cancel()
	return c.Conn.Close()
}

// SetLinger lets a reset fault reach the TCP connection underneath.
func (c *limitedConn) SetLinger(sec int) error {
	if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return nil
}
