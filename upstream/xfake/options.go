package xfake

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Options configures a [Server]. The zero value is a usable emulator with X's
// defaults: any non-empty bearer token, X's rate limits, no latency, no faults.
type Options struct {
	// Tokens lists the accepted OAuth 2.0 bearer tokens. Empty accepts any
	// non-empty bearer token. Tokens minted by the token endpoint are accepted
	// in addition, until they expire.
	Tokens []string
	// OAuth1, when set, makes an `Authorization: OAuth ...` header carry a
	// valid HMAC-SHA1 signature made with these keys. When nil, any well-formed
	// OAuth 1.0a header (all six oauth_* parameters present, method HMAC-SHA1)
	// is accepted without checking the signature.
	OAuth1 *OAuth1Keys
	// ClientID and ClientSecret authenticate callers of POST /2/oauth2/token
	// (HTTP Basic, or client_id in the form for a public client without a
	// secret). An empty ClientID skips client authentication.
	ClientID, ClientSecret string
	// RefreshTokens are the refresh tokens the token endpoint accepts at
	// start. Every use rotates: the used token dies and a new one is returned.
	// Empty accepts any non-empty refresh token that was never used before.
	RefreshTokens []string
	// AccessTokenTTL is expires_in of minted access tokens (default 2h).
	AccessTokenTTL time.Duration
	// RedirectURIs are the callback URLs registered for the app: the
	// authorize endpoint takes only these as redirect_uri, compared exactly.
	// Empty accepts any absolute http or https URL.
	RedirectURIs []string
	// AuthCodeTTL is how long an authorization code can be exchanged
	// (default 30s, X's documented lifetime).
	AuthCodeTTL time.Duration
	// RevokeFamilyOnReuse makes a spent refresh token presented again revoke
	// its whole token family: every access and refresh token descending from
	// the same authorization stops working, as X may do when a refresh token
	// is reused. Off, the reused token alone is refused.
	RevokeFamilyOnReuse bool
	// Latency is added to every upload, status and token request before it is
	// handled. Inspection endpoints are not delayed.
	Latency time.Duration
	// Bandwidth caps each connection accepted through [Server.Listener] to
	// this many bytes per second in each direction; 0 means no cap.
	Bandwidth int64
	// FaultRate is the probability (0..1) that an upload or status call fails
	// with one of FaultKinds. Half of the faults hit before the request is
	// applied, half after (the work is done, the response is lost).
	FaultRate float64
	// FaultKinds lists the faults that may be injected; empty means all of
	// Fault503, Fault500, FaultReset and FaultStall.
	FaultKinds []FaultKind
	// StallFor is how long a stall holds a request before the connection is
	// dropped (default 30s). A stall also ends when the client goes away or
	// the server is closed.
	StallFor time.Duration
	// ProcessingTime is how long asynchronous processing takes from FINALIZE
	// to succeeded or failed (default 5s).
	ProcessingTime time.Duration
	// MaxSegment is the largest APPEND media in bytes (default 5 MiB); a larger
	// one is answered 413 with an empty body, as X's edge does.
	MaxSegment int64
	// Seed seeds fault and id randomness; 0 seeds from the clock.
	Seed int64
	// RateLimits overrides X's per-token limits by endpoint key (init, append,
	// finalize, status, upload, metadata, subtitles, lookup, v1.1-init,
	// v1.1-append, v1.1-finalize, v1.1-status, v1.1-upload, v1.1-metadata,
	// v1.1-subtitles).
	// Keys not in the map keep X's defaults; a Limit <= 0 disables the key's
	// limit (and its x-rate-limit headers). See [DefaultRateLimits].
	RateLimits map[string]RateLimit
	// SessionTTL is how long an upload session lives after INIT, reported as
	// INIT's expires_after_secs (default 24h).
	SessionTTL time.Duration
	// MediaTTL is how long finalized media lives, reported as FINALIZE's
	// expires_after_secs (default 24h).
	MediaTTL time.Duration
	// SpillDir is where segment bytes are spilled while an upload is open
	// (default os.TempDir()). The server works in its own subdirectory and
	// removes it on Close.
	SpillDir string
	// Now is the clock; tests inject one to drive expiry, rate-limit windows
	// and processing. Default time.Now.
	Now func() time.Time
	// Logger receives one debug line per request. Tokens and media bytes are
	// never logged. Default discards.
	Logger *slog.Logger
}

// OAuth1Keys are the four OAuth 1.0a credentials a signed request is checked
// against.
type OAuth1Keys struct {
	ConsumerKey, ConsumerSecret string
	Token, TokenSecret          string
}

// RateLimit is a fixed window: Limit requests per Window per token.
type RateLimit struct {
	Limit  int
	Window time.Duration
}

// FaultKind names an injectable fault.
type FaultKind string

// The injectable faults.
const (
	// Fault503 answers 503 with a Problem body (v2) or code 130 (v1.1).
	Fault503 FaultKind = "503"
	// Fault500 answers 500 with {"errors":["internal server error"]} (v2) or
	// code 131 (v1.1).
	Fault500 FaultKind = "500"
	// FaultReset resets the TCP connection (SO_LINGER 0, then close).
	FaultReset FaultKind = "reset"
	// FaultStall holds the request for StallFor, then drops the connection.
	FaultStall FaultKind = "stall"
)

// AllFaultKinds returns every injectable fault, the default of
// Options.FaultKinds.
func AllFaultKinds() []FaultKind {
	return []FaultKind{Fault503, Fault500, FaultReset, FaultStall}
}

// ParseFaultKind parses "503", "500", "reset" or "stall".
func ParseFaultKind(s string) (FaultKind, error) {
	k := FaultKind(strings.ToLower(strings.TrimSpace(s)))
	for _, known := range AllFaultKinds() {
		if k == known {
			return k, nil
		}
	}
	return "", fmt.Errorf("xfake: unknown fault kind %q (want 503, 500, reset or stall)", s)
}

// Rate-limit endpoint keys.
const (
	keyInit        = "init"
	keyAppend      = "append"
	keyFinalize    = "finalize"
	keyStatus      = "status"
	keyUpload      = "upload" // the one-shot POST /2/media/upload
	keyV11Init     = "v1.1-init"
	keyV11Append   = "v1.1-append"
	keyV11Finalize = "v1.1-finalize"
	keyV11Status   = "v1.1-status"
	keyV11Upload   = "v1.1-upload" // the v1.1 simple upload
	// The calls after an upload.
	keyMetadata     = "metadata"  // POST /2/media/metadata
	keySubtitles    = "subtitles" // POST and DELETE /2/media/subtitles
	keyLookup       = "lookup"    // GET /2/media/{media_key}
	keyV11Metadata  = "v1.1-metadata"
	keyV11Subtitles = "v1.1-subtitles"
)

// DefaultRateLimits returns X's per-user limits for every endpoint key
// (FACTS §4, §8): v2 initialize/append/finalize 1875, status 1000, the
// one-shot upload 500, metadata 500 and subtitles 100 per 15 minutes; v1.1
// INIT 200, APPEND 20000, FINALIZE 615, STATUS 1000 and the simple upload
// 415 per 15 minutes. v2 dedicated and command-style calls share the v2
// keys. lookup, v1.1-metadata and v1.1-subtitles have no documented limit:
// their entries are zero (no limit) until overridden.
func DefaultRateLimits() map[string]RateLimit {
	w := 15 * time.Minute
	return map[string]RateLimit{
		keyInit:        {1875, w},
		keyAppend:      {1875, w},
		keyFinalize:    {1875, w},
		keyStatus:      {1000, w},
		keyUpload:      {500, w},
		keyV11Init:     {200, w},
		keyV11Append:   {20000, w},
		keyV11Finalize: {615, w},
		keyV11Status:   {1000, w},
		keyV11Upload:   {415, w},
		keyMetadata:    {500, w},
		keySubtitles:   {100, w},
		// No documented limit: present (so --rate-limit can set one), off.
		keyLookup:       {},
		keyV11Metadata:  {},
		keyV11Subtitles: {},
	}
}

// NoRateLimits returns a RateLimits override that disables every limit.
func NoRateLimits() map[string]RateLimit {
	m := DefaultRateLimits()
	for k := range m {
		m[k] = RateLimit{}
	}
	return m
}

// withDefaults returns a copy of o with every zero field set to its default.
func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.AccessTokenTTL, 2*time.Hour)
	def(&o.AuthCodeTTL, 30*time.Second)
	def(&o.StallFor, 30*time.Second)
	def(&o.ProcessingTime, 5*time.Second)
	def(&o.SessionTTL, 24*time.Hour)
	def(&o.MediaTTL, 24*time.Hour)
	if o.MaxSegment <= 0 {
		o.MaxSegment = 5 << 20
	}
	if len(o.FaultKinds) == 0 {
		o.FaultKinds = AllFaultKinds()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	limits := DefaultRateLimits()
	for k, v := range o.RateLimits {
		limits[k] = v
	}
	o.RateLimits = limits
	return o
}
