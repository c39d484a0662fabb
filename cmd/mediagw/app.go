package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mediagw/mediagw/gen"
	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/auth"
	"github.com/mediagw/mediagw/service/engine"
	"github.com/mediagw/mediagw/service/grpcapi"
	"github.com/mediagw/mediagw/service/inspect/rules"
	"github.com/mediagw/mediagw/service/ledger"
	"github.com/mediagw/mediagw/service/mediaops"
	"github.com/mediagw/mediagw/service/policy"
	"github.com/mediagw/mediagw/service/redisstore"
	"github.com/mediagw/mediagw/service/relay"
	"github.com/mediagw/mediagw/service/rest"
	"github.com/mediagw/mediagw/upstream"
)

// idleConnTimeout closes keep-alive connections (HTTP and gRPC) that carry
// no request for this long.
const idleConnTimeout = 2 * time.Minute

// maxRecvMsg is the largest gRPC message an Upload chunk of at most max
// bytes makes (the chunk field's tag and length around it), so that every
// chunk up to max is taken and every larger one refused by gRPC itself
// (ResourceExhausted).
func maxRecvMsg(max int) int {
	return 1 + protowire.SizeVarint(uint64(max)) + max
}

// knownMethod reports whether a call is to one of the methods mediagw
// serves (health checks excepted): only those are traced and measured.
func knownMethod(info *stats.RPCTagInfo) bool {
	name := info.FullMethodName
	if strings.HasPrefix(name, "/grpc.reflection.") {
		return true
	}
	for _, m := range mediagwv1.MediaUploadService_ServiceDesc.Methods {
		if name == "/"+mediagwv1.MediaUploadService_ServiceDesc.ServiceName+"/"+m.MethodName {
			return true
		}
	}
	for _, m := range mediagwv1.MediaUploadService_ServiceDesc.Streams {
		if name == "/"+mediagwv1.MediaUploadService_ServiceDesc.ServiceName+"/"+m.StreamName {
			return true
		}
	}
	return false
}

// gRPC flow-control windows of the server: per stream and per connection.
const (
	streamWindow = 256 << 10
	connWindow   = 8 << 20
)

// app is a running mediagw: the gRPC server, the REST gateway in front of
// it, and, with --emulator, the built-in X emulator.
type app struct {
	cfg *config
	log *slog.Logger

	grpcLis, httpLis, adminLis net.Listener
	grpcSrv                    *grpc.Server
	httpSrv                    *http.Server
	adminSrv                   *http.Server
	health                     *health.Server
	relay                      *relay.Hub
	engine                     *engine.Engine
	policies                   *policy.Policies
	releaseSpool               func() // nil unless the spool directory was claimed
	emulator                   *http.Server
	xURL                       string
	accounts                   map[string]upstream.Credentials
	accountSet                 *accountSet // what the backend reads: accounts, replaced on SIGHUP
	tokens                     *tokenStore // nil without --secrets-key-file
	defaultCreds               upstream.Credentials
	mediaRules                 atomic.Pointer[map[string]rules.Profile] // of the accounts that change them; replaced on SIGHUP
	ledger                     ledger.Ledger
	shared                     *redisstore.Store // nil without a Redis ledger
	ops                        *mediaops.Ops     // metadata, subtitles, lookup
	spoolDir                   string
	sweepStop                  chan struct{}

	tls      *auth.TLSFiles    // nil without TLS
	jwt      *auth.JWTVerifier // nil without bearer tokens
	stopJWKS context.CancelFunc
	ready    atomic.Bool // serving, and not draining
}

// newApp builds every part and opens the listeners; serve runs them.
func newApp(ctx context.Context, cfg *config, log *slog.Logger, tel *telemetry) (_ *app, err error) {
	a := &app{cfg: cfg, log: log, xURL: cfg.XAPIURL}
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()
	if cfg.Emulator {
		if err := a.startEmulator(); err != nil {
			return nil, err
		}
	}
	creds, hasDefault, err := a.credentials()
	if err != nil {
		return nil, err
	}
	for _, f := range cfg.secretFlags {
		log.Warn("a secret is given on the command line, where any user of this machine can read it (ps); set it in the environment or an --accounts file instead",
			"flag", "--"+f, "env", envName(f))
	}
	if cfg.AccountsFile != "" {
		if a.accounts, err = loadAccounts(cfg.AccountsFile, a.xURL); err != nil {
			return nil, err
		}
		if cfg.Emulator {
			warnEmulatorKeys(log, cfg.AccountsFile)
		}
		r, err := loadAccountRules(cfg.AccountsFile)
		if err != nil {
			return nil, err
		}
		a.mediaRules.Store(&r)
	}
	if len(a.accounts) > 0 && cfg.CallersFile == "" {
		log.Warn("named X accounts are configured but no --callers file grants them: only the default account is used")
	}
	a.health = health.NewServer()
	if err := a.openLedger(ctx); err != nil {
		return nil, err
	}
	if creds, err = a.storeTokens(creds, tel.mp); err != nil {
		return nil, err
	}
	a.accountSet = newAccountSet(a.accounts)
	segDir := filepath.Join(a.spoolDir, "segments")
	if err := os.MkdirAll(segDir, 0o700); err != nil {
		return nil, fmt.Errorf("spool directory: %w", err)
	}
	// Segments a stopped mediagw spilled are of no use now.
	if old, _ := filepath.Glob(filepath.Join(segDir, "mediagw-segment-*")); len(old) > 0 {
		for _, f := range old {
			_ = os.Remove(f)
		}
	}
	client, err := upstream.New(upstream.Config{
		BaseURL:               a.xURL,
		Dialect:               upstream.Dialect(cfg.XDialect),
		Credentials:           creds,
		SegmentSize:           int64(cfg.SegmentSize),
		Parallelism:           cfg.Parallelism,
		MaxInFlight:           cfg.MaxInFlight,
		BufferWait:            cfg.BufferWait,
		SpillAfter:            cfg.SpillAfter,
		SpillDir:              segDir,
		MaxAttempts:           cfg.MaxAttempts,
		RateLimitMaxWait:      cfg.RateLimitWait,
		PropagateTraceContext: cfg.XPropagateTraceparent,
		Budgets:               a.budgets(),
		Logger:                log.With("component", "upstream"),
		TracerProvider:        tel.tp,
		MeterProvider:         tel.mp,
	})
	if err != nil {
		return nil, fmt.Errorf("X client: %w", err)
	}
	if most := client.MaxUploadBytes(); int64(cfg.MaxVideoBytes) > most {
		return nil, fmt.Errorf("--max-video-bytes %d is more than one upload to X can hold on %s: at most %d bytes (1000 segments of %d)",
			int64(cfg.MaxVideoBytes), cfg.XDialect, most, most/1000)
	}
	authn, err := a.setupAuth(tel)
	if err != nil {
		return nil, err
	}
	xb := xBackend{c: client, hasDefault: hasDefault, parallelism: cfg.Parallelism, accounts: a.accountSet, log: log}
	if a.relay, err = relay.New(relay.Config{
		Backend:       xb,
		Store:         a.statusStore(),
		Owners:        a.owners(),
		WatchTimeout:  cfg.WatchTimeout,
		Logger:        log,
		MeterProvider: tel.mp,
	}); err != nil {
		return nil, err
	}
	if a.ops, err = mediaops.New(mediaops.Config{
		X: xActions{xBackend: xb, dialect: cfg.XDialect}, Dialect: cfg.XDialect, Relay: a.relay,
		Store: a.mediaRecords(), Ledger: a.ledger, ScanEvery: cfg.ActionsScan, CallTimeout: cfg.ActionsCall, Logger: log, MeterProvider: tel.mp,
	}); err != nil {
		return nil, err
	}
	a.policies = policy.New(authn == nil)
	checks, _ := engine.ParseMediaChecks(cfg.MediaChecks) // validated with the flags
	if a.engine, err = engine.New(engine.Config{
		MediaChecks:    checks,
		MediaRules:     mediaRules(&a.mediaRules),
		Backend:        xb,
		Relay:          a.relay,
		Policies:       a.policies,
		Authenticated:  authn != nil,
		Ledger:         a.ledger,
		Actions:        a.ops,
		Ready:          a.sharedReady,
		MaxUploads:     cfg.MaxUploads,
		AdmissionWait:  cfg.BufferWait,
		SpoolDir:       a.spoolDir,
		MaxSpoolBytes:  int64(cfg.MaxSpoolBytes),
		InterruptWait:  interruptWait,
		MaxVideoBytes:  int64(cfg.MaxVideoBytes),
		MaxUploadBytes: client.MaxUploadBytes(),
		IdleTimeout:    cfg.IdleTimeout,
		Logger:         log,
		TracerProvider: tel.tp,
		MeterProvider:  tel.mp,
	}); err != nil {
		return nil, err
	}
	if err := a.loadPolicy(); err != nil {
		return nil, err
	}

	if a.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("gRPC listener: %w", err)
	}
	if a.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("HTTP listener: %w", err)
	}
	if err := a.checkExposure(); err != nil {
		return nil, err
	}
	otelOpts := []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tel.tp), otelgrpc.WithMeterProvider(tel.mp), otelgrpc.WithPropagators(tel.prop),
	}
	// The Authenticator's interceptors come first: nothing else runs for a
	// caller it refuses.
	grpcOpts := grpcapi.ServerOptions(authn.ServerOptions()...)
	if a.tls != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(authn.TransportCredentials(credentials.NewTLS(a.tls.Config("h2")))))
	}
	a.grpcSrv = grpc.NewServer(append(grpcOpts, grpc.MaxRecvMsgSize(maxRecvMsg(int(cfg.MaxMessage))),
		// Connections idle this long are closed (keep-alive pings do not
		// count as activity).
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: idleConnTimeout}),
		// Fixed flow-control windows (they also turn off grpc's dynamic
		// window growth): what a connection's streams may have sent but the
		// uploads not yet taken stays bounded however many uploads wait for
		// segment buffers.
		grpc.InitialWindowSize(streamWindow), grpc.InitialConnWindowSize(connWindow),
		// Only mediagw's own methods are traced and measured: a method name
		// comes from the caller, and no metric label may take its value
		// from unauthenticated input.
		grpc.StatsHandler(otelgrpc.NewServerHandler(append(otelOpts, otelgrpc.WithFilter(knownMethod))...)))...)
	api := grpcapi.New(a.engine, a.relay).WithMediaOps(a.ops)
	api.Register(a.grpcSrv)
	healthpb.RegisterHealthServer(a.grpcSrv, a.health)
	reflection.Register(a.grpcSrv)

	gw, err := rest.NewGateway(api, a.engine, a.relay, rest.GatewayOptions{OpenAPI: gen.OpenAPI})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	// The public port serves the API only, every request authenticated
	// first; metrics, health and pprof are on the admin port.
	handler := otelhttp.NewHandler(authn.Middleware(gw), "mediagw",
		otelhttp.WithTracerProvider(tel.tp), otelhttp.WithMeterProvider(tel.mp), otelhttp.WithPropagators(tel.prop),
		// server.address and server.port come from the listener, never
		// from the request's Host header (unbounded, unauthenticated).
		otelhttp.WithServerName(a.httpLis.Addr().String()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + rest.Route(r.URL.Path) }))
	a.httpSrv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idleConnTimeout,
		// Refused TLS handshakes are reported here, with their reason.
		ErrorLog: slog.NewLogLogger(sampled(log.With("component", "http").Handler(), 5, 20), slog.LevelInfo)}
	if a.tls != nil {
		a.httpSrv.TLSConfig = a.tls.Config("h2", "http/1.1")
	}
	if err := a.readyGauge(tel.mp); err != nil {
		return nil, err
	}
	if cfg.AdminAddr != "" {
		if err := a.startAdmin(cfg.AdminAddr, tel.metrics); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// serve runs until ctx ends, then drains: it stops accepting, lets
// in-flight calls finish within the drain timeout, and cancels the rest.
func (a *app) serve(ctx context.Context) error {
	errc := make(chan error, 3)
	a.ops.Start()
	go func() { errc <- a.grpcSrv.Serve(a.grpcLis) }()
	go func() {
		if a.tls != nil {
			errc <- a.httpSrv.ServeTLS(a.httpLis, "", "")
			return
		}
		errc <- a.httpSrv.Serve(a.httpLis)
	}()
	attrs := []any{"grpc_addr", a.grpcLis.Addr().String(), "http_addr", a.httpLis.Addr().String(),
		"x_api_url", a.xURL, "x_emulator", a.cfg.Emulator, "x_dialect", a.cfg.XDialect, "tls", a.tls != nil, "mtls", a.cfg.TLSClientCA != "",
		"bearer_tokens", a.cfg.AuthJWKS != "", "accounts", policy.AccountNames(a.accounts)}
	if a.adminSrv != nil {
		go func() { errc <- a.adminSrv.Serve(a.adminLis) }()
		attrs = append(attrs, "admin_addr", a.adminLis.Addr().String())
	}
	a.reloadOnHUP(ctx)
	a.ready.Store(true)
	a.log.Info("mediagw serving", attrs...)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	a.log.Info("mediagw shutting down", "drain_timeout", a.cfg.DrainTimeout.String())
	a.drain()
	a.log.Info("mediagw stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && !errors.Is(serveErr, grpc.ErrServerStopped) {
		return serveErr
	}
	return nil
}

func (a *app) drain() {
	a.ready.Store(false)
	a.health.Shutdown()
	// Status watches could stay open for --watch-timeout: end them now
	// (Unavailable, "shutting down"), so the drain waits for uploads only.
	// The metadata and subtitles still waiting are left to the ledger scan
	// of the next start (or of another replica).
	a.ops.Close()
	a.relay.Close()
	// Past the drain timeout the uploads still running are stopped: each
	// caller gets Unavailable, and an upload with an idempotency key is
	// recorded interrupted (with its committed bytes) for a resume. They
	// get the time to settle; only then are connections cut.
	dctx, cancel := context.WithTimeout(context.Background(), a.cfg.DrainTimeout)
	defer cancel()
	stop := context.AfterFunc(dctx, func() {
		a.log.Warn("drain timeout: interrupting the uploads still running")
		a.engine.InterruptUploads()
	})
	defer stop()
	gctx, gcancel := context.WithTimeout(context.Background(), a.cfg.DrainTimeout+settleGrace)
	defer gcancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := a.httpSrv.Shutdown(gctx); err != nil {
			_ = a.httpSrv.Close()
		}
	}()
	go func() {
		defer wg.Done()
		done := make(chan struct{})
		go func() { a.grpcSrv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-gctx.Done():
			a.log.Warn("calls still running after the drain: closing their connections")
			a.grpcSrv.Stop()
			<-done
		}
	}()
	wg.Wait()
	a.closeAll()
}

// settleGrace is how long interrupted uploads may take to settle (their
// APPENDs in flight, the ledger's record) after the drain timeout.
const settleGrace = interruptWait + 5*time.Second

// interruptWait bounds the APPENDs in flight of an interrupted upload.
const interruptWait = 10 * time.Second

// closeAll releases what newApp opened; safe on a partly built app.
func (a *app) closeAll() {
	if a.ops != nil {
		a.ops.Close()
	}
	if a.relay != nil {
		a.relay.Close()
	}
	if a.releaseSpool != nil {
		a.releaseSpool()
	}
	for _, l := range []net.Listener{a.grpcLis, a.httpLis, a.adminLis} {
		if l != nil {
			_ = l.Close()
		}
	}
	if a.adminSrv != nil {
		_ = a.adminSrv.Close()
	}
	if a.stopJWKS != nil {
		a.stopJWKS()
	}
	if a.sweepStop != nil {
		close(a.sweepStop)
		a.sweepStop = nil
	}
	if a.ledger != nil {
		_ = a.ledger.Close()
		a.ledger = nil
	}
	if a.tokens != nil {
		_ = a.tokens.close()
		a.tokens = nil
	}
	if a.emulator != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = a.emulator.Shutdown(ctx)
	}
}
