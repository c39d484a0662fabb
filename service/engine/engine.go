package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/inspect/rules"
	"github.com/mediagw/mediagw/service/ledger"
	"github.com/mediagw/mediagw/service/policy"
	"github.com/mediagw/mediagw/service/relay"
)

// Config configures an Engine.
type Config struct {
	// Backend talks to X. Required.
	Backend backend.Backend
	// Relay is the status relay, told of every finished upload (its
	// uploader and terminal state). Required.
	Relay *relay.Hub
	// Policies admits uploads under the callers policy. Required.
	Policies *policy.Policies
	// MaxVideoBytes is the largest accepted video (tweet_video,
	// amplify_video, dm_video). X's own limit follows the user's plan
	// (512 MB to 16 GB); default 512 MiB.
	MaxVideoBytes int64
	// MaxUploadBytes is the largest upload X can take in one (1000
	// segments of the largest segment the dialect accepts); it caps every
	// category. Default: X's total_bytes maximum, 16 GiB.
	MaxUploadBytes int64
	// StatusTTL is how long a finished upload's ledger entry lives when X
	// did not say how long the media id lives; default 24h.
	StatusTTL time.Duration
	// Ledger records uploads that carry an idempotency key; nil refuses
	// such uploads (FailedPrecondition).
	Ledger ledger.Ledger
	// IdleTimeout fails an upload whose caller sent nothing for this long
	// (DeadlineExceeded), releasing its segment buffer; default 1m. The
	// transports enforce it on their reads.
	IdleTimeout time.Duration
	// Authenticated says every call carries the identity authentication
	// established; a call without one is refused (fail closed).
	Authenticated bool
	// Ready, when set, says whether the state mediagw shares with other
	// replicas is reachable. While it returns an error, new uploads are
	// refused with Unavailable before anything reaches X.
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
	// Actions, when set, applies UploadStart.metadata and subtitles once
	// the media is usable; nil refuses uploads that name them.
	Actions Actions
	// MediaChecks says what is done with X's media rules: the bytes are
	// inspected as they stream (service/inspect) and media that breaks a
	// rule is refused (ChecksEnforce), reported (ChecksWarn) or not
	// inspected at all (ChecksOff, the zero value).
	MediaChecks MediaChecks
	// MediaRules returns the rules of an upload's X account ("" for
	// mediagw's default credentials and callers' own tokens); nil, or a
	// nil answer, means rules.Default().
	MediaRules func(account string) rules.Profile
	// PreInitBytes is how much of the media is read before INIT when the
	// media is inspected, so that a violation its header (or a faststart
	// moov) shows is refused before X sees anything: reading stops
	// earlier once the inspector has decided. Default DefaultPreInitBytes.
	PreInitBytes int64
	// Logger receives one line per upload; default slog.Default(). Tokens
	// and media bytes are never logged.
	Logger *slog.Logger
	// TracerProvider and MeterProvider default to the otel globals.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Engine runs uploads: the one upload path of every transport.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	tel   *telemetry
	spool *spool // nil: uploads of unknown size are refused
	admit *admission

	// stopping ends when InterruptUploads is called: every upload still
	// running stops (interrupted, when it has an idempotency key).
	stopping context.Context
	stop     context.CancelFunc
}

// New returns an Engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Backend == nil || cfg.Relay == nil || cfg.Policies == nil {
		return nil, errors.New("engine: Config.Backend, Relay and Policies are required")
	}
	if cfg.MaxVideoBytes <= 0 {
		cfg.MaxVideoBytes = defaultVideoM
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = xMaxBytes
	}
	if cfg.StatusTTL <= 0 {
		cfg.StatusTTL = 24 * time.Hour
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Minute
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
	if cfg.PreInitBytes <= 0 {
		cfg.PreInitBytes = DefaultPreInitBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tel, err := newTelemetry(cfg.TracerProvider, cfg.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("engine: telemetry: %w", err)
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, tel: tel}
	e.stopping, e.stop = context.WithCancel(context.Background())
	e.admit = newAdmission(cfg.MaxUploads, cfg.MaxQueued, cfg.AdmissionWait)
	if cfg.SpoolDir != "" {
		if cfg.MaxSpoolBytes <= 0 {
			cfg.MaxSpoolBytes = 1 << 30
		}
		if e.spool, err = newSpool(cfg.SpoolDir, cfg.MaxSpoolBytes); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	return e, nil
}

// InterruptUploads stops every upload still running, for a shutdown past
// its drain timeout: each caller gets Unavailable ("mediagw is shutting
// down"), and an upload with an idempotency key is recorded INTERRUPTED
// with its committed bytes, to be resumed on another replica or after the
// restart. The calls return once their uploads have settled.
func (e *Engine) InterruptUploads() {
	e.stop()
}

// IdleTimeout is how long a transport waits for the next bytes of an
// upload before it fails it (see Config.IdleTimeout).
func (e *Engine) IdleTimeout() time.Duration { return e.cfg.IdleTimeout }

// ready refuses new work while the shared state is unreachable.
func (e *Engine) ready() error {
	if e.cfg.Ready == nil {
		return nil
	}
	if err := e.cfg.Ready(); err != nil {
		return status.Errorf(codes.Unavailable, "mediagw is not ready: %v", err)
	}
	return nil
}

// GetUpload reports where the caller's upload with an idempotency key
// stands.
func (e *Engine) GetUpload(ctx context.Context, c backend.Caller, key string) (*mediagwv1.UploadState, error) {
	if err := e.cfg.Policies.Authorize(&c, "", false); err != nil {
		return nil, apierr.ToStatus(err)
	}
	if err := validKey(key); err != nil {
		return nil, apierr.ToStatus(err)
	}
	if e.cfg.Ledger == nil {
		return nil, apierr.ToStatus(apierr.NotFoundf("no upload with idempotency key %s (mediagw's ledger is off)", apierr.Quote(key)))
	}
	en, err := e.cfg.Ledger.Get(ctx, scope(c, key))
	if errors.Is(err, ledger.ErrNoEntry) {
		return nil, apierr.ToStatus(apierr.NotFoundf("no upload with idempotency key %s", apierr.Quote(key)))
	}
	if err != nil {
		return nil, apierr.ToStatus(ledgerError(err))
	}
	st := stateOf(en)
	if e.cfg.Actions != nil {
		st.Actions = e.cfg.Actions.Proto(en.Actions)
	}
	return st, nil
}
