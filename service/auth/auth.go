package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/mediagw/mediagw/service/apierr"
)

// Identity is the authenticated caller of one call.
type Identity struct {
	// ID names the caller in the callers policy, logs and spans: the bearer
	// token's subject when tokens are configured, else the client
	// certificate's first URI SAN (a SPIFFE id), else its subject CN.
	ID string
}

type identityKey struct{}

// WithIdentity returns ctx carrying id. Only the Authenticator's
// interceptors and middleware call it in mediagw; tests of the handlers
// may too.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the caller an [Authenticator] established for ctx.
// Nothing a caller sends (metadata, headers) is read here: the value is set
// only by the gRPC interceptors and the HTTP middleware.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// TokenVerifier checks a bearer token.
type TokenVerifier interface {
	// Verify returns the subject of a valid token. A refusal should be a
	// [*TokenError]; its text is shown to the caller, so it says what is
	// wrong and never repeats the token.
	Verify(ctx context.Context, token string) (subject string, err error)
}

// TokenError is why a bearer token was refused.
type TokenError struct {
	// Reason is a short upper-case code (EXPIRED, NOT_YET_VALID, ISSUER,
	// AUDIENCE, SIGNATURE, ALGORITHM, UNKNOWN_KEY, MALFORMED, CLAIMS,
	// KEYS_UNAVAILABLE); it is the ErrorInfo reason (prefixed TOKEN_) and a
	// metric label.
	Reason string
	// Detail explains it to the caller.
	Detail string
}

func (e *TokenError) Error() string { return e.Detail }

// Config configures an [Authenticator]; at least one mechanism is set,
// and every mechanism set is required on every call.
type Config struct {
	// ClientCerts says the listeners require client certificates chained
	// to the client CA (the TLS handshake refuses any other); the
	// Authenticator reads the caller from the verified certificate.
	ClientCerts bool
	// Tokens verifies the Authorization: Bearer token of every call (gRPC
	// metadata authorization), except the gRPC health service's.
	Tokens TokenVerifier
	// Logger receives one line per refused call (never the credential);
	// default slog.Default().
	Logger        *slog.Logger
	MeterProvider metric.MeterProvider
	// Route names a REST path by its route template, for the log line of
	// a refused request (never the path itself, which may hold ids).
	Route func(path string) string
}

// Authenticator establishes who calls, the same way for both transports:
// gRPC interceptors ([Authenticator.ServerOptions]) and an HTTP middleware
// ([Authenticator.Middleware]) put the caller into the call's context,
// where the service reads it. A nil *Authenticator authenticates nobody
// and lets every call through (mediagw then serves loopback only).
type Authenticator struct {
	cfg     Config
	log     *slog.Logger
	refused metric.Int64Counter

	// logs samples the refusal log lines: every refusal is counted, but a
	// flood of them (a scanner, a misconfigured client) writes a bounded
	// number of lines, each saying how many were left out before it.
	logs       *rate.Limiter
	suppressed atomic.Int64
}

// refusalLogs bounds the refusal log lines: this many a second, in bursts
// of refusalBurst.
const (
	refusalLogs  = 5
	refusalBurst = 20
)

// New returns an Authenticator for cfg.
func New(cfg Config) (*Authenticator, error) {
	if !cfg.ClientCerts && cfg.Tokens == nil {
		return nil, errors.New("service: Config sets no mechanism")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Route == nil {
		cfg.Route = func(string) string { return "/*" }
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	refused, err := mp.Meter("github.com/mediagw/mediagw/service").Int64Counter("mediagw.auth.refused",
		metric.WithDescription("Calls refused for missing or invalid credentials, by transport and reason."))
	if err != nil {
		return nil, err
	}
	return &Authenticator{cfg: cfg, log: cfg.Logger, refused: refused, logs: rate.NewLimiter(refusalLogs, refusalBurst)}, nil
}

// maxAuthorization bounds an Authorization value (service-account tokens
// are about 1 KiB).
const maxAuthorization = 16 << 10

// healthPrefix is the gRPC health service's method prefix: its calls need
// no bearer token (the TLS handshake still requires a client certificate
// under mTLS), so that probes need no token.
var healthPrefix = "/" + healthpb.Health_ServiceDesc.ServiceName + "/"

// authenticate checks one call. state is the connection's TLS state (nil
// on plaintext), authz the Authorization values it carries.
func (a *Authenticator) authenticate(ctx context.Context, state *tls.ConnectionState, authz []string, tokens bool) (Identity, error) {
	var id Identity
	if a.cfg.ClientCerts {
		if state == nil || len(state.VerifiedChains) == 0 || len(state.PeerCertificates) == 0 {
			return id, apierr.Unauthenticated("CLIENT_CERTIFICATE", "no verified client certificate: connect over TLS with a certificate issued by the client CA")
		}
		if id.ID = certIdentity(state.PeerCertificates[0]); id.ID == "" {
			return id, apierr.Unauthenticated("CLIENT_CERTIFICATE", "the client certificate has neither a URI SAN nor a subject common name")
		}
	}
	if a.cfg.Tokens != nil && tokens {
		tok, err := bearerToken(authz)
		if err != nil {
			return id, err
		}
		sub, err := a.cfg.Tokens.Verify(ctx, tok)
		if err != nil {
			var te *TokenError
			if errors.As(err, &te) {
				return id, apierr.Unauthenticated("TOKEN_"+te.Reason, "bearer token refused: "+te.Detail)
			}
			return id, apierr.Unauthenticated("TOKEN_INVALID", "bearer token refused")
		}
		id.ID = sub
	}
	return id, nil
}

// certIdentity is a client certificate's first URI SAN, else its CN.
func certIdentity(c *x509.Certificate) string {
	if len(c.URIs) > 0 {
		return c.URIs[0].String()
	}
	return c.Subject.CommonName
}

// bearerToken reads the one Authorization: Bearer value of a call.
func bearerToken(values []string) (string, error) {
	switch {
	case len(values) == 0:
		return "", apierr.Unauthenticated("TOKEN_MISSING", "no bearer token: send Authorization: Bearer <JWT> (gRPC: authorization metadata)")
	case len(values) > 1:
		return "", apierr.Unauthenticated("TOKEN_MALFORMED", fmt.Sprintf("Authorization is given %d times; send one bearer token", len(values)))
	}
	v := values[0]
	if len(v) > maxAuthorization {
		return "", apierr.Unauthenticated("TOKEN_MALFORMED", fmt.Sprintf("Authorization is longer than %d bytes", maxAuthorization))
	}
	scheme, tok, _ := strings.Cut(v, " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", apierr.Unauthenticated("TOKEN_MALFORMED", "Authorization must be Bearer <JWT>")
	}
	return tok, nil
}

// refuse records a refused call: a metric and one log line, with the
// reason and never the credential.
func (a *Authenticator) refuse(ctx context.Context, transport, method, peerAddr string, err error) {
	reason := "UNKNOWN"
	var in *apierr.Error
	if errors.As(err, &in) && in.Reason != "" {
		reason = in.Reason
	}
	a.refused.Add(ctx, 1, metric.WithAttributes(attribute.String("upload.transport", transport), attribute.String("reason", reason)))
	if !a.logs.Allow() {
		a.suppressed.Add(1)
		return
	}
	attrs := []slog.Attr{slog.String("transport", transport), slog.String("method", method), slog.String("peer", peerAddr),
		slog.String("reason", reason), slog.String("error", err.Error())}
	if n := a.suppressed.Swap(0); n > 0 {
		attrs = append(attrs, slog.Int64("refusals_not_logged", n))
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "call refused", attrs...)
}

// TransportCredentials wraps the gRPC listener's TLS credentials so that
// a refused handshake (under mTLS: no client certificate, or one the
// client CA did not issue) is counted and logged like a refused call;
// gRPC itself only drops the connection.
func (a *Authenticator) TransportCredentials(c credentials.TransportCredentials) credentials.TransportCredentials {
	if a == nil {
		return c
	}
	return refusingCreds{TransportCredentials: c, a: a}
}

type refusingCreds struct {
	credentials.TransportCredentials
	a *Authenticator
}

func (c refusingCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		c.a.refuse(context.Background(), "grpc", "TLS handshake", conn.RemoteAddr().String(),
			apierr.Unauthenticated("CLIENT_CERTIFICATE", "TLS handshake refused: "+err.Error()))
	}
	return out, info, err
}

func (c refusingCreds) Clone() credentials.TransportCredentials {
	return refusingCreds{TransportCredentials: c.TransportCredentials.Clone(), a: c.a}
}

// ServerOptions are the gRPC interceptors that authenticate every call;
// give them before the gRPC transport's own so that nothing else runs for
// a stranger. Nil for a nil Authenticator.
func (a *Authenticator) ServerOptions() []grpc.ServerOption {
	if a == nil {
		return nil
	}
	f := func(ctx context.Context) (context.Context, error) {
		var state *tls.ConnectionState
		if p, ok := peer.FromContext(ctx); ok {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
				state = &ti.State
			}
		}
		method, _ := grpc.Method(ctx)
		tokens := !strings.HasPrefix(method, healthPrefix)
		id, err := a.authenticate(ctx, state, metadata.ValueFromIncomingContext(ctx, "authorization"), tokens)
		if err != nil {
			peerAddr := ""
			if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
				peerAddr = p.Addr.String()
			}
			a.refuse(ctx, "grpc", method, peerAddr, err)
			return nil, apierr.ToStatus(err)
		}
		return WithIdentity(ctx, id), nil
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(grpcauth.UnaryServerInterceptor(f)),
		grpc.ChainStreamInterceptor(grpcauth.StreamServerInterceptor(f)),
	}
}

// Middleware authenticates every request before next sees it. A refused
// request gets 401 with WWW-Authenticate: Bearer and a problem body that
// says what was wrong. next for a nil Authenticator.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.authenticate(r.Context(), r.TLS, r.Header.Values("Authorization"), true)
		if err != nil {
			a.refuse(r.Context(), "rest", r.Method+" "+a.cfg.Route(r.URL.Path), r.RemoteAddr, err)
			w.Header().Set("WWW-Authenticate", challenge(err))
			apierr.WriteProblem(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

// challenge is the WWW-Authenticate value of a refusal (RFC 6750 §3).
func challenge(err error) string {
	var in *apierr.Error
	if !errors.As(err, &in) || in.Reason == "TOKEN_MISSING" || in.Reason == "CLIENT_CERTIFICATE" {
		return `Bearer realm="mediagw"`
	}
	desc := strings.NewReplacer(`"`, "'", `\`, "/").Replace(in.Msg)
	return fmt.Sprintf(`Bearer realm="mediagw", error="invalid_token", error_description="%s"`, desc)
}
