package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// TokenMetadataKey is the gRPC metadata key (REST header X-Access-Token)
// through which a caller passes the X user token an upload or status call
// runs with.
const TokenMetadataKey = "x-access-token"

// Config configures a Server.
type Config struct {
	// Backend talks to X. Required.
	Backend Backend
	// MaxVideoBytes is the largest accepted video (tweet_video,
	// amplify_video, dm_video). X's own limit follows the user's plan
	// (512 MB to 16 GB); default 512 MiB.
	MaxVideoBytes int64
	// MaxUploadBytes is the largest upload X can take in one (1000
	// segments of the largest segment the dialect accepts); it caps every
	// category. Default: X's total_bytes maximum, 16 GiB.
	MaxUploadBytes int64
	// PollMin and PollMax clamp X's check_after_secs between two STATUS
	// calls of one media id; defaults 1s and 30s.
	PollMin, PollMax time.Duration
	// WatchTimeout bounds how long one media id is polled before watchers
	// get DeadlineExceeded; default 30m.
	WatchTimeout time.Duration
	// IdleTimeout fails an upload whose caller sent nothing for this long
	// (DeadlineExceeded), releasing its segment buffer; default 1m.
	IdleTimeout time.Duration
	// StatusTTL is how long a terminal state is remembered when X did not
	// say how long the media id lives; default 24h.
	StatusTTL time.Duration
	// Authenticator, when set, is the one that guards the transports: every
	// call must then carry the identity it established (a call without one
	// is refused), and a callers policy may be set. Nil: no authentication,
	// every caller is the same anonymous one.
	Authenticator *Authenticator
	// Ledger records uploads that carry an idempotency key; nil refuses
	// such uploads (FailedPrecondition).
	Ledger Ledger
	// StatusStore keeps the terminal states and the poll leases of the
	// status relay; default the in-process store (NewMemoryStatusStore).
	// A shared one (Redis) makes replicas share one poller per media id.
	StatusStore StatusStore
	// Ready, when set, says whether the state mediagw shares with other
	// replicas is reachable. While it returns an error, new uploads,
	// GetStatus and WatchStatus are refused with Unavailable before
	// anything reaches X.
	Ready func() error
	// SpoolDir, when set, takes uploads of unknown size (total_bytes 0):
	// they are written there until they end, then uploaded. Files a
	// stopped mediagw left in it are removed by New.
	SpoolDir string
	// MaxSpoolBytes bounds the spool, per upload and in total; default
	// 1 GiB.
	MaxSpoolBytes int64
	// MaxUploads bounds the uploads running at once (default 256);
	// MaxQueued bounds those waiting for a slot (default 64), for at most
	// AdmissionWait (default 30s). Past either: ResourceExhausted with a
	// retry delay, before anything of the upload is read.
	MaxUploads    int
	MaxQueued     int
	AdmissionWait time.Duration
	// InterruptWait is how long the APPENDs in flight of an interrupted
	// upload may take to finish (their bytes are all there) before they
	// are cancelled; default 10s.
	InterruptWait time.Duration
	// Logger receives one line per upload; default slog.Default(). Tokens
	// and media bytes are never logged.
	Logger *slog.Logger
	// TracerProvider and MeterProvider default to the otel globals.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Server implements mediagw.v1.MediaUploadService.
type Server struct {
	mediagwv1.UnimplementedMediaUploadServiceServer

	cfg     Config
	backend Backend
	log     *slog.Logger
	status  *statusHub
	policy  *policies
	tel     *telemetry
	spool   *spool // nil: uploads of unknown size are refused
	admit   *admission

	// stopping ends when InterruptUploads is called: every upload still
	// running stops (interrupted, when it has an idempotency key).
	stopping context.Context
	stop     context.CancelFunc
}

var _ mediagwv1.MediaUploadServiceServer = (*Server)(nil)

// New returns a Server. Close it to stop its STATUS pollers.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("service: Config.Backend is required")
	}
	if cfg.MaxVideoBytes <= 0 {
		cfg.MaxVideoBytes = defaultVideoM
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = xMaxBytes
	}
	if cfg.PollMin <= 0 {
		cfg.PollMin = time.Second
	}
	if cfg.PollMax < cfg.PollMin {
		cfg.PollMax = max(30*time.Second, cfg.PollMin)
	}
	if cfg.WatchTimeout <= 0 {
		cfg.WatchTimeout = 30 * time.Minute
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Minute
	}
	if cfg.StatusTTL <= 0 {
		cfg.StatusTTL = 24 * time.Hour
	}
	if cfg.InterruptWait <= 0 {
		cfg.InterruptWait = 10 * time.Second
	}
	if cfg.MaxUploads <= 0 {
		cfg.MaxUploads = 256
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = 64
	}
	if cfg.AdmissionWait <= 0 {
		cfg.AdmissionWait = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StatusStore == nil {
		cfg.StatusStore = NewMemoryStatusStore(0)
	}
	tel, err := newTelemetry(cfg.TracerProvider, cfg.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("service: telemetry: %w", err)
	}
	s := &Server{cfg: cfg, backend: cfg.Backend, log: cfg.Logger, tel: tel, policy: newPolicies(cfg.Authenticator == nil)}
	s.stopping, s.stop = context.WithCancel(context.Background())
	s.admit = newAdmission(cfg.MaxUploads, cfg.MaxQueued, cfg.AdmissionWait)
	if cfg.SpoolDir != "" {
		if cfg.MaxSpoolBytes <= 0 {
			cfg.MaxSpoolBytes = 1 << 30
		}
		if s.spool, err = newSpool(cfg.SpoolDir, cfg.MaxSpoolBytes); err != nil {
			return nil, fmt.Errorf("service: %w", err)
		}
	}
	s.status = newStatusHub(s, cfg.StatusStore)
	return s, nil
}

// Close stops the STATUS pollers; watchers still open end with Unavailable.
func (s *Server) Close() {
	s.status.close()
}

// InterruptUploads stops every upload still running, for a shutdown past
// its drain timeout: each caller gets Unavailable ("mediagw is shutting
// down"), and an upload with an idempotency key is recorded INTERRUPTED
// with its committed bytes, to be resumed on another replica or after the
// restart. The calls return once their uploads have settled.
func (s *Server) InterruptUploads() {
	s.stop()
}

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	mediagwv1.RegisterMediaUploadServiceServer(r, s)
}

// GetStatus implements mediagw.v1.MediaUploadService.
func (s *Server) GetStatus(ctx context.Context, req *mediagwv1.GetStatusRequest) (*mediagwv1.ProcessingStatus, error) {
	if err := validMediaID(req.GetMediaId()); err != nil {
		return nil, toStatus(err)
	}
	a, err := s.statusAccess(ctx, req.GetMediaId())
	if err != nil {
		return nil, toStatus(err)
	}
	st, err := s.status.get(ctx, a, req.GetMediaId())
	return st, toStatus(err)
}

// statusAccess returns the X credential a status call of the caller in
// ctx for mediaID runs with, or why it may not see it.
func (s *Server) statusAccess(ctx context.Context, mediaID string) (Auth, error) {
	c, err := s.callerFromContext(ctx)
	if err != nil {
		return Auth{}, err
	}
	return s.statusAccessFor(c, mediaID)
}

func (s *Server) statusAccessFor(c Caller, mediaID string) (Auth, error) {
	if err := s.ready(); err != nil {
		return Auth{}, err
	}
	if _, err := s.policy.authorize(&c, "", false); err != nil {
		return Auth{}, err
	}
	return s.status.access(c, mediaID)
}

// WatchStatus implements mediagw.v1.MediaUploadService.
func (s *Server) WatchStatus(req *mediagwv1.WatchStatusRequest, stream grpc.ServerStreamingServer[mediagwv1.ProcessingStatus]) error {
	if err := validMediaID(req.GetMediaId()); err != nil {
		return toStatus(err)
	}
	ctx := stream.Context()
	a, err := s.statusAccess(ctx, req.GetMediaId())
	if err != nil {
		return toStatus(err)
	}
	s.tel.watchers.Add(ctx, 1)
	defer s.tel.watchers.Add(ctx, -1)
	return toStatus(s.status.watch(ctx, a, req.GetMediaId(), stream.Send))
}

// ready refuses new work while the shared state is unreachable.
func (s *Server) ready() error {
	if s.cfg.Ready == nil {
		return nil
	}
	if err := s.cfg.Ready(); err != nil {
		return status.Errorf(codes.Unavailable, "mediagw is not ready: %v", err)
	}
	return nil
}

// validMediaID accepts X's numeric media ids only, so nothing else is ever
// put into an upstream URL.
func validMediaID(id string) error {
	if id == "" {
		return invalidf("media_id is required")
	}
	if len(id) > 20 {
		return invalidf("media_id %q is not an X media id", id)
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return invalidf("media_id %q is not an X media id", id)
		}
	}
	return nil
}
