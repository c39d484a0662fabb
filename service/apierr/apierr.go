// Package apierr is mediagw's API error model: the one table that turns
// the errors of every package into gRPC statuses (with their ErrorInfo,
// RetryInfo and QuotaFailure details) and, for REST, into the matching
// HTTP status and an RFC 7807 problem document. Refusals are made with
// [Error] (or its constructors); errors of the upstream adapter are read
// through the small interfaces it satisfies ([ToStatus] says which), so
// no package here imports it.
//
// [FromProblem] reads a problem document back into a status error, for
// REST clients (mediagwctl).
package apierr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Error is a request mediagw refuses, in the caller's words.
type Error struct {
	Code codes.Code
	Msg  string
	// Reason, when set, travels as an ErrorInfo detail (domain [Domain])
	// that names the situation more precisely than the code.
	Reason string
	// Retry, when set, travels as RetryInfo: waiting this long may help.
	Retry time.Duration
	// Quota, when set, names the caller's quota a QuotaFailure detail
	// reports as violated.
	Quota string
	// Resumable marks refusals that interrupt an upload with an
	// idempotency key instead of failing it (the stream ended short).
	Resumable bool
	// Cause is what went wrong in mediagw's own words, for its log: it
	// may name files, addresses and hosts, and never reaches the caller.
	Cause error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// LogValue is what mediagw's log says of the error: its cause, when it
// has one.
func (e *Error) LogValue() slog.Value {
	if e.Cause != nil {
		return slog.StringValue(e.Cause.Error())
	}
	return slog.StringValue(e.Msg)
}

// Unavailable is an Unavailable error whose cause stays in the log.
func Unavailable(cause error, format string, args ...any) error {
	return &Error{Code: codes.Unavailable, Msg: fmt.Sprintf(format, args...), Cause: cause}
}

// Domain is the ErrorInfo domain of mediagw's reasons.
const Domain = "mediagw"

// Reasons of ErrorInfo details.
const (
	// ReasonCallerIdle: the caller sent no byte for the idle timeout (REST
	// answers 408 instead of DeadlineExceeded's 504).
	ReasonCallerIdle = "CALLER_IDLE"
)

// Invalidf is an InvalidArgument refusal.
func Invalidf(format string, args ...any) error {
	return &Error{Code: codes.InvalidArgument, Msg: fmt.Sprintf(format, args...)}
}

// NotFoundf is a NotFound refusal.
func NotFoundf(format string, args ...any) error {
	return &Error{Code: codes.NotFound, Msg: fmt.Sprintf(format, args...)}
}

// Deniedf is a PermissionDenied refusal.
func Deniedf(format string, args ...any) error {
	return &Error{Code: codes.PermissionDenied, Msg: fmt.Sprintf(format, args...)}
}

// Unauthenticated is an Unauthenticated refusal with its reason.
func Unauthenticated(reason, msg string) error {
	return &Error{Code: codes.Unauthenticated, Reason: reason, Msg: msg}
}

// CallerIdle is the error of an upload whose caller sent no byte for d.
func CallerIdle(d time.Duration, received int64) error {
	return &Error{Code: codes.DeadlineExceeded, Reason: ReasonCallerIdle,
		Msg: fmt.Sprintf("no data from the caller for %s: upload abandoned after %d bytes", d, received)}
}

// OverQuota is a caller's quota refusal: ResourceExhausted, with RetryInfo
// when waiting retry may help (0: it will not).
func OverQuota(subject string, retry time.Duration, format string, args ...any) error {
	return &Error{Code: codes.ResourceExhausted, Retry: retry, Quota: subject, Msg: fmt.Sprintf(format, args...)}
}

// IsResumable reports whether err is a refusal marked Resumable.
func IsResumable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Resumable
}

// The small interfaces through which the upstream adapter's errors are
// read without importing it.
type (
	httpStatusError   interface{ StatusCode() int }
	retryDelayError   interface{ RetryDelay() time.Duration }
	invalidInputError interface{ InvalidInput() bool }
)

// ToStatus is the one place where errors become gRPC statuses. Every RPC
// returns through it.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	var in *Error
	if errors.As(err, &in) {
		st := status.New(in.Code, in.Msg)
		var details []protoadapt.MessageV1
		if in.Reason != "" {
			details = append(details, &errdetails.ErrorInfo{Reason: in.Reason, Domain: Domain})
		}
		if in.Quota != "" {
			details = append(details, &errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: in.Quota, Description: in.Msg}}})
		}
		if in.Retry > 0 {
			details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(in.Retry)})
		}
		if len(details) > 0 {
			if d, err := st.WithDetails(details...); err == nil {
				st = d
			}
		}
		return st.Err()
	}
	var ii invalidInputError
	if errors.As(err, &ii) && ii.InvalidInput() {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	// X's answer (or its silence: a call that timed out on every attempt
	// says 504) decides before any context error it wraps; the caller's own
	// cancellation comes back bare and is handled below.
	var hs httpStatusError
	if errors.As(err, &hs) {
		return fromHTTP(hs.StatusCode(), err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if errors.Is(err, context.DeadlineExceeded) {
			return status.Error(codes.DeadlineExceeded, err.Error())
		}
		return status.Error(codes.Canceled, err.Error())
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return status.Error(codes.Unavailable, "X is unreachable: "+err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// fromHTTP maps an error X answered with an HTTP status to a gRPC status.
func fromHTTP(code int, err error) error {
	msg := err.Error()
	switch {
	case code == http.StatusUnauthorized:
		return status.Error(codes.Unauthenticated, msg)
	case code == http.StatusForbidden:
		return status.Error(codes.PermissionDenied, msg)
	case code == http.StatusNotFound:
		return status.Error(codes.NotFound, msg)
	case code == http.StatusTooManyRequests:
		return withRetry(status.New(codes.ResourceExhausted, msg), err)
	case code == http.StatusConflict || code == http.StatusPreconditionFailed:
		return status.Error(codes.FailedPrecondition, msg)
	case code == http.StatusRequestTimeout || code >= 500:
		return withRetry(status.New(codes.Unavailable, msg), err)
	case code >= 400:
		return status.Error(codes.InvalidArgument, msg)
	}
	return status.Error(codes.Unknown, msg)
}

// withRetry attaches RetryInfo when the error says when to try again.
func withRetry(st *status.Status, err error) error {
	var rd retryDelayError
	if !errors.As(err, &rd) || rd.RetryDelay() <= 0 {
		return st.Err()
	}
	detailed, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(rd.RetryDelay())})
	if derr != nil {
		return st.Err()
	}
	return detailed.Err()
}

// MaxEcho bounds how much of a caller's input an error message repeats.
const MaxEcho = 64

// Quote returns s quoted for an error message, cut to MaxEcho bytes.
func Quote(s string) string {
	if len(s) > MaxEcho {
		return fmt.Sprintf("%q… (%d bytes)", s[:MaxEcho], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// RetryDelay is how long the error (of X, through the upstream adapter)
// says to wait before trying again; 0 when it says nothing.
func RetryDelay(err error) time.Duration {
	var rd retryDelayError
	if errors.As(err, &rd) {
		return max(rd.RetryDelay(), 0)
	}
	return 0
}

// XStatus is the HTTP status X answered the error with; 0 when the error
// is not an answer of X's.
func XStatus(err error) int {
	var hs httpStatusError
	if errors.As(err, &hs) {
		return hs.StatusCode()
	}
	return 0
}
