package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// inputError is the type of the sentinels that describe a caller mistake
// (bad parameters, wrong byte count). Packages that must not import upstream
// detect them with errors.As against a local interface{ InvalidInput() bool }.
type inputError struct{ msg string }

// Error implements error.
func (e *inputError) Error() string { return e.msg }

// InvalidInput reports that the error was caused by the caller's input, not by
// X or the network; retrying the same input cannot succeed.
func (e *inputError) InvalidInput() bool { return true }

// Sentinel errors. They are always wrapped, so test them with [errors.Is].
// The error returned says what happened in one sentence of its own (for
// example "received 9216 of the declared 10240 bytes"); the sentinel names
// the kind. Those describing a caller mistake (all except [ErrRateLimited]
// and [ErrAborted]) also have an InvalidInput() bool method that returns
// true, so a package that cannot import upstream can classify them with
// [errors.As] against its own interface{ InvalidInput() bool }.
var (
	// ErrTooManyBytes: the caller sent more bytes than InitParams.TotalBytes.
	// Nothing past TotalBytes is sent to X, and the upload fails.
	ErrTooManyBytes error = &inputError{"more bytes than the declared total"}
	// ErrShortUpload: Finish was called before TotalBytes bytes were received.
	ErrShortUpload error = &inputError{"fewer bytes than the declared total"}
	// ErrSegmentTooLarge: the file is larger than X takes in one upload:
	// it would need segments larger than Config.MaxSegmentSize to stay
	// within X's 1000 segments (see [MaxUploadBytes]).
	ErrSegmentTooLarge error = &inputError{"file needs segments larger than X takes"}
	// ErrInvalidParams: InitParams, a media id or credentials are malformed.
	ErrInvalidParams error = &inputError{"invalid parameters"}
	// ErrRateLimited: X's rate limit (or the client's record of it) does not
	// allow the request within Config.RateLimitMaxWait. Returned inside a
	// [*RateLimitError].
	ErrRateLimited = errors.New("rate limited by X")
	// ErrAborted: the upload was aborted with [Upload.Abort](nil), or used
	// after Finish.
	ErrAborted = errors.New("upload aborted")
	// ErrUnsupported: the Client's dialect has no such call or field (v1.1
	// has no media lookup, and its metadata call takes only alt text and
	// sensitive-media warnings). Nothing is sent. Besides InvalidInput() it
	// has Unsupported() bool, so a caller can tell it from bad input.
	ErrUnsupported error = &unsupportedError{}
)

// unsupportedError is the type of ErrUnsupported.
type unsupportedError struct{}

// Error implements error.
func (*unsupportedError) Error() string { return "not supported by the dialect" }

// InvalidInput reports true: retrying the same call on the same dialect
// cannot succeed.
func (*unsupportedError) InvalidInput() bool { return true }

// Unsupported reports true: the dialect lacks the call or field.
func (*unsupportedError) Unsupported() bool { return true }

// kindError is an error with a text of its own that is also one of the
// sentinels above, for errors.Is and errors.As.
type kindError struct {
	kind error
	msg  string
}

// Error implements error.
func (e *kindError) Error() string { return e.msg }

// Unwrap returns the sentinel.
func (e *kindError) Unwrap() error { return e.kind }

// kindf returns an error reading as the formatted text that wraps kind.
func kindf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// invalidf returns an ErrInvalidParams that reads as the message.
func invalidf(format string, args ...any) error {
	return kindf(ErrInvalidParams, format, args...)
}

// maxEcho bounds what an error text repeats of anything that came from
// outside (X's messages, the caller's values): an echo longer than this is
// cut, so a huge input never comes back whole.
const maxEcho = 128

// what names a call in an error text: "INIT", "APPEND of segment 3".
func what(command string, segment int) string {
	if command == "" {
		return "a request"
	}
	if command == "APPEND" && segment >= 0 {
		return "APPEND of segment " + strconv.Itoa(segment)
	}
	return command
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// APIError is a non-2xx answer from X (or a proxy in front of it), parsed from
// any of the error shapes X uses: {"errors":[{code,message}]},
// {"request","error"}, RFC 7807 Problem bodies, their hybrids, errors as plain
// strings, or a non-JSON body (kept as a short, sanitized snippet in Detail).
type APIError struct {
	HTTPStatus int           // HTTP status code of the response
	Code       int           // X error code (errors[0].code), 0 when absent
	Title      string        // Problem title, when present
	Detail     string        // the most specific message found in the body
	Type       string        // Problem type URI, when present
	RetryAfter time.Duration // from Retry-After, or until Reset on a 429
	Reset      time.Time     // x-rate-limit-reset, zero when absent
	Command    string        // INIT, APPEND, FINALIZE or STATUS
	Segment    int           // APPEND segment index; meaningful for APPEND only
	MediaID    string        // the media id of the call, "" for INIT
	Attempts   int           // attempts that got this answer when it was retried; 0 or 1 otherwise
	// MaybeApplied is set on a call X does not document as idempotent
	// (metadata, subtitles) when X answered 408 or 5xx: X may have applied
	// it before failing, so the call was not retried and its outcome is
	// unknown.
	MaybeApplied bool
	// NotCut, on an APPEND answered 413, says why the upload could not be
	// cut into smaller segments (see [WithReplanned]).
	NotCut string
}

// Error implements error: one sentence such as "X answered APPEND of
// segment 3 with HTTP 400 (code 38): media parameter is missing." It never
// contains credentials or X's URL: bodies are sanitized, cut to 128
// characters and scrubbed of the request's secrets before they are stored.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("X answered ")
	if e.Command != "" {
		b.WriteString(what(e.Command, e.Segment))
		b.WriteString(" with ")
	}
	b.WriteString("HTTP ")
	b.WriteString(strconv.Itoa(e.HTTPStatus))
	if e.Code != 0 {
		fmt.Fprintf(&b, " (code %d)", e.Code)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	msg := e.Detail
	if msg == "" {
		msg = e.Title
	}
	if msg == "" {
		msg = http.StatusText(e.HTTPStatus)
	}
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(truncate(msg, maxEcho))
	}
	if e.MaybeApplied {
		b.WriteString(" (X may have applied it)")
	}
	if e.NotCut != "" {
		b.WriteString("; mediagw cannot cut the upload smaller: ")
		b.WriteString(e.NotCut)
	}
	return b.String()
}

// LogValue implements slog.LogValuer: every field, for operators. Like
// Error, it holds no credentials.
func (e *APIError) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("command", e.Command), slog.Int("http_status", e.HTTPStatus)}
	if e.Command == "APPEND" {
		attrs = append(attrs, slog.Int("segment", e.Segment))
	}
	if e.MediaID != "" {
		attrs = append(attrs, slog.String("media_id", e.MediaID))
	}
	if e.Code != 0 {
		attrs = append(attrs, slog.Int("code", e.Code))
	}
	for _, kv := range [][2]string{{"title", e.Title}, {"detail", e.Detail}, {"type", e.Type}} {
		if kv[1] != "" {
			attrs = append(attrs, slog.String(kv[0], kv[1]))
		}
	}
	if e.Attempts > 0 {
		attrs = append(attrs, slog.Int("attempts", e.Attempts))
	}
	if e.RetryAfter > 0 {
		attrs = append(attrs, slog.Duration("retry_after", e.RetryAfter))
	}
	if e.NotCut != "" {
		attrs = append(attrs, slog.String("not_cut", e.NotCut))
	}
	return slog.GroupValue(attrs...)
}

// StatusCode returns the HTTP status X answered with.
func (e *APIError) StatusCode() int { return e.HTTPStatus }

// OutcomeUnknown reports [APIError.MaybeApplied]: X may have applied the
// call although it answered an error.
func (e *APIError) OutcomeUnknown() bool { return e.MaybeApplied }

// RetryDelay returns how long X asked the caller to wait before trying again,
// or 0 when it did not say.
func (e *APIError) RetryDelay() time.Duration { return e.RetryAfter }

// RateLimitError reports that a request could not be sent within
// Config.RateLimitMaxWait because X's rate limit for the endpoint is used up.
// It wraps [ErrRateLimited] and, when X answered 429, the [*APIError].
type RateLimitError struct {
	Command   string    // INIT, APPEND, FINALIZE or STATUS
	Endpoint  string    // rate-limit key, e.g. "append" or "v1.1-init"
	Limit     int       // x-rate-limit-limit, 0 when unknown
	Reset     time.Time // when the window resets
	Throttled bool      // true when held by the client before sending
	Err       *APIError // X's 429 answer; nil when held client-side
}

// Error implements error: "X's rate limit for APPEND is used up until
// 2025-06-14T12:00:00Z (X answered 429)".
func (e *RateLimitError) Error() string {
	how := "X answered 429"
	if e.Throttled {
		how = "no requests left in the window"
	}
	return fmt.Sprintf("X's rate limit for %s is used up until %s (%s)",
		e.Command, e.Reset.UTC().Format(time.RFC3339), how)
}

// LogValue implements slog.LogValuer.
func (e *RateLimitError) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", e.Command), slog.String("endpoint", e.Endpoint),
		slog.Int("limit", e.Limit), slog.Time("reset", e.Reset), slog.Bool("throttled", e.Throttled))
}

// StatusCode returns 429.
func (e *RateLimitError) StatusCode() int { return http.StatusTooManyRequests }

// RetryDelay returns the time left until the rate-limit window resets.
func (e *RateLimitError) RetryDelay() time.Duration {
	d := time.Until(e.Reset)
	if d < 0 {
		return 0
	}
	return d
}

// Unwrap lets [errors.Is] find [ErrRateLimited] and [errors.As] the APIError.
func (e *RateLimitError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrRateLimited}
	}
	return []error{ErrRateLimited, e.Err}
}

// ProcessingError is the processing_info.error X reports when it cannot
// process uploaded media (for example code 1 InvalidMedia, code 3
// UnsupportedMedia).
type ProcessingError struct {
	Code    int    // X's processing error code
	Name    string // e.g. "InvalidMedia"
	Message string // e.g. "Unsupported video format"
}

// Error implements error.
func (e *ProcessingError) Error() string {
	return fmt.Sprintf("X could not process the media: %s (code %d): %s",
		truncate(e.Name, maxEcho), e.Code, truncate(e.Message, maxEcho))
}

// ProcessingCode returns X's processing error code.
func (e *ProcessingError) ProcessingCode() int { return e.Code }

// ProcessingName returns X's processing error name, e.g. "InvalidMedia".
func (e *ProcessingError) ProcessingName() string { return e.Name }

// InvalidInput reports whether the failure is about the media itself
// (InvalidMedia, UnsupportedMedia): re-sending the same bytes cannot succeed.
func (e *ProcessingError) InvalidInput() bool {
	return e.Code == 1 || e.Code == 3 || e.Name == "InvalidMedia" || e.Name == "UnsupportedMedia"
}

// TransportError reports that X could not be reached or did not answer in
// time, after all retries.
type TransportError struct {
	Command  string // INIT, APPEND, FINALIZE or STATUS
	Segment  int    // APPEND segment index, -1 otherwise
	MediaID  string // the media id of the call, "" for INIT
	Attempts int    // attempts made
	Err      error  // the last attempt's error
	// MaybeApplied is set on a call X does not document as idempotent
	// (metadata, subtitles) when its request reached X and no answer came
	// back (a reset, a timeout, a stall): X may have applied it, so it was
	// not retried and its outcome is unknown.
	MaybeApplied bool
	msg          string // scrubbed text of Err, for LogValue
}

// OutcomeUnknown reports [TransportError.MaybeApplied]: X may have applied
// the call although no answer came.
func (e *TransportError) OutcomeUnknown() bool { return e.MaybeApplied }

// Error implements error: one sentence naming the call and why the last
// attempt failed, e.g. "X did not answer APPEND of segment 3 after 5
// attempts (connection reset)". It never contains X's URL or a secret;
// LogValue and Unwrap keep the underlying error for operators.
func (e *TransportError) Error() string {
	s := fmt.Sprintf("X did not answer %s after %s (%s)",
		what(e.Command, e.Segment), plural(e.Attempts, "attempt", "attempts"), transportReason(e.Err))
	if e.MaybeApplied {
		s += " and may have applied it"
	}
	return s
}

// LogValue implements slog.LogValuer: the call, the attempts and the last
// attempt's error text (scrubbed of the request's secrets, with X's URL).
func (e *TransportError) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("command", e.Command)}
	if e.Segment >= 0 {
		attrs = append(attrs, slog.Int("segment", e.Segment))
	}
	if e.MediaID != "" {
		attrs = append(attrs, slog.String("media_id", e.MediaID))
	}
	return slog.GroupValue(append(attrs, slog.Int("attempts", e.Attempts),
		slog.String("reason", transportReason(e.Err)), slog.String("cause", e.msg))...)
}

// Unwrap returns the last attempt's error.
func (e *TransportError) Unwrap() error { return e.Err }

// StatusCode returns 504 when the last attempt timed out or stalled, else
// 503.
func (e *TransportError) StatusCode() int {
	var st *stallError
	if errors.Is(e.Err, context.DeadlineExceeded) || errors.As(e.Err, &st) {
		return http.StatusGatewayTimeout
	}
	return http.StatusServiceUnavailable
}

// transportReason says in a few words why a request got no answer.
func transportReason(err error) string {
	var (
		st  *stallError
		tre *TokenRefreshError
		dns *net.DNSError
		ne  net.Error
		cv  *tls.CertificateVerificationError
		rh  tls.RecordHeaderError
	)
	switch {
	case err == nil:
		return "no answer"
	case errors.As(err, &st):
		return "no progress for " + st.after.String()
	case errors.As(err, &tre):
		return "the OAuth 2.0 token could not be refreshed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE),
		// net/http closes a connection whose read failed; the body's
		// write still under way then fails on the closed socket, and
		// net/http may report that error instead of the read's.
		errors.Is(err, net.ErrClosed):
		return "connection closed"
	case errors.As(err, &dns):
		return "host name not resolved"
	case errors.As(err, &cv), errors.As(err, &rh):
		return "TLS failed"
	}
	return "connection failed"
}
