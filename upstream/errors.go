package upstream

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
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

// Sentinel errors. They are always wrapped with %w, so test them with
// [errors.Is]. Those describing a caller mistake (all except [ErrRateLimited]
// and [ErrAborted]) also have an InvalidInput() bool method that returns true,
// so a package that cannot import upstream can classify them with [errors.As]
// against its own interface{ InvalidInput() bool }.
var (
	// ErrTooManyBytes: the caller sent more bytes than InitParams.TotalBytes.
	// Nothing past TotalBytes is sent to X, and the upload fails.
	ErrTooManyBytes error = &inputError{"upstream: more bytes than the declared total"}
	// ErrShortUpload: Finish was called before TotalBytes bytes were received.
	ErrShortUpload error = &inputError{"upstream: fewer bytes than the declared total"}
	// ErrSegmentTooLarge: the planner needs segments larger than
	// Config.MaxSegmentSize to stay within X's 1000 segments.
	ErrSegmentTooLarge error = &inputError{"upstream: file needs segments larger than the maximum segment size"}
	// ErrInvalidParams: InitParams, a media id or credentials are malformed.
	ErrInvalidParams error = &inputError{"upstream: invalid parameters"}
	// ErrRateLimited: X's rate limit (or the client's record of it) does not
	// allow the request within Config.RateLimitMaxWait. Returned inside a
	// [*RateLimitError].
	ErrRateLimited = errors.New("upstream: rate limited")
	// ErrAborted: the upload was aborted with [Upload.Abort](nil), or used
	// after Finish.
	ErrAborted = errors.New("upstream: upload aborted")
)

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
}

// Error implements error. It never contains credentials: bodies are
// sanitized and scrubbed of the request's secrets before they are stored.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("upstream: X ")
	if e.Command != "" {
		b.WriteString(e.Command)
		b.WriteString(" ")
	}
	b.WriteString("HTTP ")
	b.WriteString(strconv.Itoa(e.HTTPStatus))
	if e.Code != 0 {
		fmt.Fprintf(&b, " (code %d)", e.Code)
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
		b.WriteString(msg)
	}
	return b.String()
}

// StatusCode returns the HTTP status X answered with.
func (e *APIError) StatusCode() int { return e.HTTPStatus }

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

// Error implements error.
func (e *RateLimitError) Error() string {
	how := "X answered 429"
	if e.Throttled {
		how = "no requests left in the window"
	}
	return fmt.Sprintf("upstream: X %s rate limited on %q (%s); resets at %s",
		e.Command, e.Endpoint, how, e.Reset.UTC().Format(time.RFC3339))
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
	return fmt.Sprintf("upstream: X media processing failed: %s (code %d): %s", e.Name, e.Code, e.Message)
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

// invalidf wraps ErrInvalidParams with a message.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidParams}, args...)...)
}
