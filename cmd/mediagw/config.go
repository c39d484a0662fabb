package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mediagw/mediagw/service/bytesize"
	"github.com/mediagw/mediagw/service/engine"
)

// config is mediagw's configuration: every flag has an environment twin
// (MEDIAGW_ + the flag name in upper case, dashes as underscores); a flag
// given on the command line wins over its variable.
type config struct {
	GRPCAddr string
	HTTPAddr string

	XAPIURL  string
	XDialect string
	// Emulator runs mediagw on the built-in X emulator instead of X: for
	// demos and tests, never implied by a missing --x-api-url.
	Emulator bool
	// OAuth 2.0 user context: a static token, or a refresh token exchanged
	// through XTokenURL with the client id/secret.
	XToken        string
	XClientID     string
	XClientSecret string
	XRefreshToken string
	XTokenURL     string
	// OAuth 1.0a user context.
	XConsumerKey, XConsumerSecret    string
	XOAuth1Token, XOAuth1TokenSecret string

	// XPropagateTraceparent sends X the W3C traceparent of each call.
	XPropagateTraceparent bool

	SegmentSize   sizeFlag
	Parallelism   int
	MaxInFlight   int
	MaxAttempts   int
	MaxUploads    int
	BufferWait    time.Duration
	SpillAfter    time.Duration
	MaxVideoBytes sizeFlag
	MaxMessage    sizeFlag
	RateLimitWait time.Duration
	DrainTimeout  time.Duration
	WatchTimeout  time.Duration
	ActionsScan   time.Duration
	ActionsCall   time.Duration
	IdleTimeout   time.Duration

	// Ledger is the upload ledger: a bbolt file path, a redis:// or
	// rediss:// URL (state shared by replicas), "off", or empty for the
	// default path.
	Ledger string
	// LeaseTTL is how long a Redis lease outlives its holder's last
	// renewal.
	LeaseTTL time.Duration
	// SpoolDir holds uploads of unknown size; empty: beside the ledger.
	SpoolDir      string
	MaxSpoolBytes sizeFlag

	LogFormat string
	LogLevel  string
	// AdminAddr serves /metrics, /healthz, /readyz (and pprof with Pprof);
	// empty: off.
	AdminAddr string
	// Pprof serves /debug/pprof/ on the admin port.
	Pprof bool

	// TLS for both listeners; TLSClientCA turns on mTLS.
	TLSCert, TLSKey, TLSClientCA string
	// JWT bearer tokens: the JWKS (a file or an https URL), and the iss
	// and aud every token must carry.
	AuthJWKS, AuthIssuer, AuthAudience string
	// AuthJWTType, when set, is the typ every bearer token must carry.
	AuthJWTType string
	// InsecureNoAuth lets mediagw serve non-loopback addresses without
	// authentication.
	InsecureNoAuth bool
	// CallersFile is the per-caller policy (YAML), AccountsFile the named
	// X accounts (YAML).
	CallersFile, AccountsFile string
	// MediaChecks is --media-checks: enforce, warn or off.
	MediaChecks string

	// secretFlags are secrets given as command-line flags, which ps shows.
	secretFlags []string

	// Secrets: stored OAuth 2.0 tokens and the admin token (tokenstore.go).
	Secrets secretsConfig

	// Emulator settings, used only with Emulator.
	EmulatorLatency        time.Duration
	EmulatorProcessingTime time.Duration
	EmulatorMaxSegment     sizeFlag

	// ShowVersion prints the build's version and exits (--version).
	ShowVersion bool
}

// sizeFlag is a byte count written as 4MiB, 40MB or 1048576.
type sizeFlag int64

func (s *sizeFlag) String() string { return fmt.Sprint(int64(*s)) }
func (s *sizeFlag) Set(v string) error {
	n, err := bytesize.Parse(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

// parseConfig reads args and then, for flags not given, the environment.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c, fs := newFlags(stderr)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return c.finish(fs, getenv)
}

// newFlags is mediagw's flag set, bound to a config holding the defaults.
// docs/configuration.md is generated from it (see TestConfigurationDoc).
func newFlags(stderr io.Writer) (*config, *flag.FlagSet) {
	c := &config{SegmentSize: 4 << 20, EmulatorMaxSegment: 5 << 20, MaxVideoBytes: 512 << 20, MaxMessage: 1 << 20, MaxSpoolBytes: 1 << 30}
	fs := flag.NewFlagSet("mediagw", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:9090", "gRPC listen address")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "REST gateway listen address")
	fs.StringVar(&c.XAPIURL, "x-api-url", "", "X API base URL (https://api.x.com); required unless --emulator")
	fs.BoolVar(&c.Emulator, "emulator", false, "run on the built-in X emulator on a loopback port (demos and tests: media ids are fake); excludes --x-api-url")
	fs.StringVar(&c.XDialect, "x-dialect", "v2", "X upload API dialect: v2, v2-command or v1.1")
	fs.StringVar(&c.XToken, "x-token", "", "default X OAuth 2.0 user access token (media.write scope)")
	fs.StringVar(&c.XClientID, "x-client-id", "", "OAuth 2.0 client id, to refresh the token with --x-refresh-token")
	fs.StringVar(&c.XClientSecret, "x-client-secret", "", "OAuth 2.0 client secret")
	fs.StringVar(&c.XRefreshToken, "x-refresh-token", "", "OAuth 2.0 refresh token; access tokens are then refreshed automatically")
	fs.StringVar(&c.XTokenURL, "x-token-url", "", "OAuth 2.0 token endpoint; default <x-api-url>/2/oauth2/token")
	fs.StringVar(&c.XConsumerKey, "x-consumer-key", "", "OAuth 1.0a consumer key (user context instead of OAuth 2.0)")
	fs.StringVar(&c.XConsumerSecret, "x-consumer-secret", "", "OAuth 1.0a consumer secret")
	fs.StringVar(&c.XOAuth1Token, "x-oauth1-token", "", "OAuth 1.0a access token")
	fs.StringVar(&c.XOAuth1TokenSecret, "x-oauth1-token-secret", "", "OAuth 1.0a access token secret")
	fs.BoolVar(&c.XPropagateTraceparent, "x-propagate-traceparent", false, "send X the W3C traceparent of each call (never tracestate or baggage)")
	fs.Var(&c.SegmentSize, "segment-size", "preferred X APPEND segment size (e.g. 4MiB)")
	fs.IntVar(&c.Parallelism, "parallelism", 4, "APPENDs in flight per upload")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", 64, "segments in flight across all uploads")
	fs.IntVar(&c.MaxUploads, "max-uploads", 256, "uploads running at once; more wait (up to 64, for --buffer-wait) or are refused with ResourceExhausted")
	fs.DurationVar(&c.BufferWait, "buffer-wait", 30*time.Second, "longest wait for an upload slot or a segment buffer before ResourceExhausted (retry later)")
	fs.DurationVar(&c.SpillAfter, "spill-after", 500*time.Millisecond, "a segment filling this long while another upload waits for a buffer is moved to disk")
	fs.IntVar(&c.MaxAttempts, "max-attempts", 5, "attempts per X call on timeouts, connection errors, 408 and 5xx")
	fs.Var(&c.MaxVideoBytes, "max-video-bytes", "largest accepted video (e.g. 512MiB)")
	fs.Var(&c.MaxMessage, "max-message", "largest gRPC message accepted (Upload chunk size limit)")
	fs.DurationVar(&c.RateLimitWait, "rate-limit-wait", time.Minute, "longest wait for an X rate-limit reset before ResourceExhausted")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long in-flight uploads may take before they are cancelled")
	fs.DurationVar(&c.WatchTimeout, "watch-timeout", 30*time.Minute, "how long one media id is polled for STATUS")
	fs.DurationVar(&c.ActionsScan, "actions-scan", 30*time.Second, "how often the ledger is scanned for uploads whose metadata or subtitles are still to apply (after a restart or another replica's death)")
	fs.DurationVar(&c.ActionsCall, "actions-call-timeout", 30*time.Second, "bounds one X call that sets metadata or subtitles; a call a dead replica left under way is taken over this long (and 5s) after it was sent, when it can no longer reach X")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", time.Minute, "fail an upload whose caller sends nothing for this long, releasing its buffer")
	fs.StringVar(&c.Ledger, "ledger", "", "upload ledger: a file path (embedded bbolt), redis://[user:password@]host:port/db or rediss://… (shared by replicas: ledger, status, rate limits), or off; default mediagw/ledger.db under $XDG_STATE_HOME or ~/.local/state")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", 10*time.Second, "with a Redis ledger: how long a replica's lease on an upload or a STATUS poll outlives it")
	fs.StringVar(&c.SpoolDir, "spool-dir", "", "where uploads of unknown size wait until they end; default <ledger>.spool (a temporary directory with --ledger off or a Redis ledger)")
	fs.Var(&c.MaxSpoolBytes, "max-spool-bytes", "bound of the spool, per upload and in total (e.g. 1GiB)")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:9091", "serve /metrics, /healthz and /readyz (and /debug/pprof/ with --pprof) on this address (no authentication); empty: off")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve /debug/pprof/ on the admin port (profiles show what the process holds; /debug/pprof/cmdline shows the program name only)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate (PEM) of both listeners; reloaded when it changes or on SIGHUP")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key (PEM) of --tls-cert")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", "", "require client certificates chained to this CA (PEM): mTLS; the caller is the certificate's first URI SAN, else its CN")
	fs.StringVar(&c.AuthJWKS, "auth-jwks", "", "require JWT bearer tokens verified with this JWKS: a file, or an https URL fetched and refreshed")
	fs.StringVar(&c.AuthIssuer, "auth-issuer", "", "the iss every bearer token must carry")
	fs.StringVar(&c.AuthAudience, "auth-audience", "", "the aud every bearer token must include")
	fs.StringVar(&c.AuthJWTType, "auth-jwt-type", "", "the typ header every bearer token must carry (e.g. JWT); empty: any")
	fs.BoolVar(&c.InsecureNoAuth, "insecure-no-auth", false, "serve non-loopback addresses without authentication (anyone who reaches the ports uploads with mediagw's X accounts)")
	fs.StringVar(&c.CallersFile, "callers", "", "per-caller policy (YAML): accounts, own X tokens, quotas; reloaded on SIGHUP")
	fs.StringVar(&c.AccountsFile, "accounts", "", "named X accounts (YAML), chosen per upload with account=, with their media_rules, and default_media_rules for uploads with the --x-* credentials or a caller's own X token; reloaded on SIGHUP")
	c.Secrets.register(fs)
	fs.StringVar(&c.MediaChecks, "media-checks", "", "X's media rules (duration, dimensions, codecs, frame rate, GIF frames, ...; changed per account, and for the --x-* credentials, in --accounts): enforce refuses breaking media before INIT when its first 512KiB show it, else before FINALIZE; warn logs, counts and uploads anyway; off does not inspect. Default enforce, or warn with --emulator (whose demos upload made-up bytes)")
	fs.DurationVar(&c.EmulatorLatency, "emulator-latency", 0, "built-in emulator: latency added per request")
	fs.DurationVar(&c.EmulatorProcessingTime, "emulator-processing-time", 5*time.Second, "built-in emulator: how long video processing takes")
	fs.Var(&c.EmulatorMaxSegment, "emulator-max-segment", "built-in emulator: the largest APPEND it takes; larger ones get 413 with an empty body, as X's edge answers, and mediagw cuts the rest of the upload smaller")
	fs.BoolVar(&c.ShowVersion, "version", false, "print the version, commit and build date, and exit")
	return c, fs
}

// finish checks what the flags left and reads the environment twins of
// the flags not given.
func (c *config) finish(fs *flag.FlagSet, getenv func(string) string) (*config, error) {
	if c.ShowVersion {
		return c, nil
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		given[f.Name] = true
		if secretFlags[f.Name] && f.Value.String() != "" {
			c.secretFlags = append(c.secretFlags, f.Name)
		}
	})
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v := getenv(name); v != "" && !given[f.Name] && err == nil && f.Name != "version" {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("%s: %w", name, serr)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return c, c.validate()
}

// secretFlags are the flags whose values are secrets: given on the command
// line, they are visible to anyone who can list processes.
var secretFlags = map[string]bool{
	"x-token": true, "x-client-secret": true, "x-refresh-token": true,
	"x-consumer-secret": true, "x-oauth1-token": true, "x-oauth1-token-secret": true,
}

func envName(flagName string) string {
	return "MEDIAGW_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (c *config) validate() error {
	switch c.XDialect {
	case "v2", "v2-command", "v1.1":
	default:
		return fmt.Errorf("--x-dialect must be v2, v2-command or v1.1, not %q", c.XDialect)
	}
	if c.Parallelism < 1 || c.MaxInFlight < 1 || c.MaxAttempts < 1 {
		return fmt.Errorf("--parallelism, --max-in-flight and --max-attempts must be at least 1")
	}
	if c.LeaseTTL < 300*time.Millisecond {
		return fmt.Errorf("--lease-ttl must be at least 300ms, not %s", c.LeaseTTL)
	}
	if c.ActionsCall <= 0 || c.ActionsScan <= 0 {
		return fmt.Errorf("--actions-call-timeout and --actions-scan must be positive, not %s and %s", c.ActionsCall, c.ActionsScan)
	}
	if c.MediaChecks == "" {
		c.MediaChecks = "enforce"
		if c.Emulator {
			c.MediaChecks = "warn"
		}
	}
	if _, err := engine.ParseMediaChecks(c.MediaChecks); err != nil {
		return fmt.Errorf("--media-checks must be enforce, warn or off, not %q", c.MediaChecks)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return fmt.Errorf("--log-format must be json or text, not %q", c.LogFormat)
	}
	if c.XRefreshToken != "" && (c.XClientID == "") {
		return fmt.Errorf("--x-refresh-token needs --x-client-id")
	}
	oauth1 := c.XConsumerKey != "" || c.XConsumerSecret != "" || c.XOAuth1Token != "" || c.XOAuth1TokenSecret != ""
	if oauth1 && (c.XConsumerKey == "" || c.XConsumerSecret == "" || c.XOAuth1Token == "" || c.XOAuth1TokenSecret == "") {
		return fmt.Errorf("OAuth 1.0a needs all of --x-consumer-key, --x-consumer-secret, --x-oauth1-token and --x-oauth1-token-secret")
	}
	if oauth1 && (c.XToken != "" || c.XRefreshToken != "") {
		return fmt.Errorf("choose OAuth 1.0a or OAuth 2.0 credentials, not both")
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	switch {
	case c.XAPIURL == "" && !c.Emulator:
		return fmt.Errorf("no X API configured: set --x-api-url (with X credentials) to upload to X, or --emulator to run on the built-in X emulator")
	case c.XAPIURL != "" && c.Emulator:
		return fmt.Errorf("--emulator and --x-api-url contradict each other: choose the built-in emulator or X")
	}
	return nil
}

// authenticated reports whether callers must prove who they are.
func (c *config) authenticated() bool { return c.TLSClientCA != "" || c.AuthJWKS != "" }

func (c *config) validateAuth() error {
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return fmt.Errorf("--tls-cert and --tls-key go together")
	case c.TLSClientCA != "" && c.TLSCert == "":
		return fmt.Errorf("--tls-client-ca needs --tls-cert and --tls-key: mTLS is TLS with client certificates")
	case c.AuthJWKS != "" && (c.AuthIssuer == "" || c.AuthAudience == ""):
		return fmt.Errorf("--auth-jwks needs --auth-issuer and --auth-audience: tokens are checked for both")
	case c.AuthJWKS == "" && (c.AuthIssuer != "" || c.AuthAudience != ""):
		return fmt.Errorf("--auth-issuer and --auth-audience need --auth-jwks, the keys tokens are verified with")
	case c.InsecureNoAuth && c.authenticated():
		return fmt.Errorf("--insecure-no-auth contradicts --tls-client-ca and --auth-jwks: choose authentication or none")
	case c.CallersFile != "" && !c.authenticated():
		return fmt.Errorf("--callers needs authentication (--tls-client-ca or --auth-jwks): without it every caller is the same")
	}
	return nil
}
