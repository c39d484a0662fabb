package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// config is the parsed command line.
type config struct {
	addr string
	opts xfake.Options
}

// listFlag collects a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// sizeFlag is a byte size in xfake.ParseSize syntax.
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	if f.n == nil {
		return "0"
	}
	return fmt.Sprint(*f.n)
}

func (f sizeFlag) Set(v string) error {
	n, err := xfake.ParseSize(v)
	if err == nil {
		*f.n = n
	}
	return err
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var (
		cfg                     config
		o                       = &cfg.opts
		tokens, refresh, limits listFlag
		redirects               listFlag
		kinds                   listFlag
		ck, cs, at, ats         string
		logFormat, logLevel     string
	)
	o.MaxSegment = 5 << 20
	fs := flag.NewFlagSet("xfake", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8090", "listen address (host:port; port 0 picks one)")
	fs.Var(&tokens, "token", "accepted OAuth 2.0 bearer token (repeatable or comma separated; none = any non-empty)")
	fs.DurationVar(&o.Latency, "latency", 0, "latency added to every upload, status and token request (e.g. 50ms)")
	fs.Var(sizeFlag{&o.Bandwidth}, "bandwidth", "per-connection byte rate cap per direction, e.g. 40MB, 5MiB (0 = none)")
	fs.Float64Var(&o.FaultRate, "fault-rate", 0, "probability (0..1) that an upload or status call fails")
	fs.Var(&kinds, "fault-kinds", "faults to inject: 503,500,reset,stall (default all)")
	fs.DurationVar(&o.StallFor, "stall-for", 30*time.Second, "how long a stall holds a request before dropping it")
	fs.DurationVar(&o.ProcessingTime, "processing-time", 5*time.Second, "how long asynchronous processing takes")
	fs.Var(sizeFlag{&o.MaxSegment}, "max-segment", "largest APPEND media; larger is 413 (default 5MiB)")
	fs.Int64Var(&o.Seed, "seed", 0, "seed for faults and ids (0 = clock)")
	fs.Var(&limits, "rate-limit", "override a limit: key=N/window (repeatable; N=0 disables), or 'off' for none")
	fs.StringVar(&ck, "consumer-key", "", "OAuth 1.0a consumer key; with the other three, signatures are verified")
	fs.StringVar(&cs, "consumer-secret", "", "OAuth 1.0a consumer secret")
	fs.StringVar(&at, "access-token", "", "OAuth 1.0a access token")
	fs.StringVar(&ats, "access-token-secret", "", "OAuth 1.0a access token secret")
	fs.StringVar(&o.ClientID, "client-id", "", "OAuth 2.0 client id for POST /2/oauth2/token (empty = not checked)")
	fs.StringVar(&o.ClientSecret, "client-secret", "", "OAuth 2.0 client secret")
	fs.Var(&refresh, "refresh-token", "accepted refresh token (repeatable; none = any unused one)")
	fs.DurationVar(&o.AccessTokenTTL, "access-token-ttl", 2*time.Hour, "lifetime of minted access tokens")
	fs.Var(&redirects, "redirect-uri", "registered OAuth 2.0 callback URL (repeatable; none = any http(s) URL)")
	fs.BoolVar(&o.RevokeFamilyOnReuse, "revoke-family-on-reuse", false,
		"a spent refresh token presented again revokes every token of its authorization")
	fs.DurationVar(&o.SessionTTL, "session-ttl", 24*time.Hour, "upload session lifetime (INIT expires_after_secs)")
	fs.DurationVar(&o.MediaTTL, "media-ttl", 24*time.Hour, "media lifetime after FINALIZE")
	fs.StringVar(&o.SpillDir, "spill-dir", "", "directory for spilled segments (default the system temp dir)")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error (debug logs every request)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	o.Tokens, o.RefreshTokens, o.RedirectURIs = tokens, refresh, redirects
	if o.FaultRate < 0 || o.FaultRate > 1 {
		return cfg, fmt.Errorf("--fault-rate %v: want 0..1", o.FaultRate)
	}
	for _, k := range kinds {
		kind, err := xfake.ParseFaultKind(k)
		if err != nil {
			return cfg, err
		}
		o.FaultKinds = append(o.FaultKinds, kind)
	}
	if err := parseLimits(o, limits); err != nil {
		return cfg, err
	}
	switch set := countSet(ck, cs, at, ats); set {
	case 0:
	case 4:
		o.OAuth1 = &xfake.OAuth1Keys{ConsumerKey: ck, ConsumerSecret: cs, Token: at, TokenSecret: ats}
	default:
		return cfg, fmt.Errorf("--consumer-key, --consumer-secret, --access-token and --access-token-secret go together (%d of 4 set)", set)
	}
	logger, err := newLogger(out, logFormat, logLevel)
	if err != nil {
		return cfg, err
	}
	o.Logger = logger
	return cfg, nil
}

func parseLimits(o *xfake.Options, limits []string) error {
	for _, l := range limits {
		if l == "off" {
			o.RateLimits = xfake.NoRateLimits()
			continue
		}
		key, rl, err := xfake.ParseRateLimit(l)
		if err != nil {
			return err
		}
		if o.RateLimits == nil {
			o.RateLimits = map[string]xfake.RateLimit{}
		}
		o.RateLimits[key] = rl
	}
	return nil
}

func countSet(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}

func newLogger(out io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	hopts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(out, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(out, hopts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
