package upstream

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// newTransport returns the Client's own transport, tuned for
// Config.MaxInFlight large request bodies at once:
//
//   - HTTP/1.1 only: each APPEND in flight has a TCP connection of its
//     own, so parallel segments get their own congestion windows, a lost
//     packet holds up one segment rather than all, and a stalled
//     connection (see watchdog) is one attempt's. HTTP/2 would put every
//     APPEND of the Client on one connection.
//   - Connections are dialled by this package and wrapped in bodyConn, for
//     TLS too (the handshake is done here, offering only http/1.1), so that
//     an APPEND body reaches the socket in place: the request line, headers
//     and the body's first few KiB in one write, the rest of the segment
//     and the multipart tail in one writev. Behind a proxy (CONNECT)
//     net/http does TLS itself and bodies take its copying path.
//   - Up to MaxInFlight + 16 idle connections per host are kept, so bursts
//     of parallel APPENDs and the INIT, FINALIZE and STATUS calls around
//     them reuse connections; MaxConnsPerHost stays unlimited, because the
//     Client's own semaphore already bounds APPENDs and a transport limit
//     would make an INIT wait, unseen, behind them.
//   - Default 4 KiB read and write buffers: answers are a few hundred
//     bytes, and a larger write buffer would only copy more of each
//     segment. No compression: answers are small, and an offered gzip only
//     costs CPU.
//   - TCP keep-alive probes every 30 s and a 90 s idle timeout; no
//     response header timeout, as the watchdog and the per-attempt
//     deadline bound every call.
//
// tlsConf, nil in production, replaces the TLS configuration (tests use it
// for their own certificate authority).
func newTransport(cfg Config, tlsConf *tls.Config) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &bodyConn{Conn: c}, nil
		},
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			conf := &tls.Config{}
			if tlsConf != nil {
				conf = tlsConf.Clone()
			}
			if conf.ServerName == "" {
				conf.ServerName, _, _ = net.SplitHostPort(addr)
			}
			conf.NextProtos = []string{"http/1.1"}
			tc := tls.Client(raw, conf)
			hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := tc.HandshakeContext(hctx); err != nil {
				_ = raw.Close()
				return nil, err
			}
			return &bodyConn{Conn: tc}, nil
		},
		TLSClientConfig:     tlsConf,
		Protocols:           protocols,
		ForceAttemptHTTP2:   false,
		MaxIdleConns:        2 * (cfg.MaxInFlight + 16),
		MaxIdleConnsPerHost: cfg.MaxInFlight + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     4 << 10,
		ReadBufferSize:      4 << 10,
	}
}
