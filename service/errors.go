package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// inputError is a request the service refuses before anything reaches X.
type inputError struct {
	code codes.Code
	msg  string
	// reason, when set, travels as an ErrorInfo detail (domain mediagw)
	// that names the situation more precisely than the code.
	reason string
	// retry, when set, travels as RetryInfo: waiting this long may help.
	retry time.Duration
	// quota, when set, names the caller's quota a QuotaFailure detail
	// reports as violated.
	quota string
	// resumable marks refusals that interrupt an upload with an
	// idempotency key instead of failing it (the stream ended short).
	resumable bool
}

// Reasons of ErrorInfo details.
const (
	// reasonCallerIdle: the caller sent no byte for the idle timeout (REST
	// answers 408 instead of DeadlineExceeded's 504).
	reasonCallerIdle = "CALLER_IDLE"
	errorDomain      = "mediagw"
)

func (e *inputError) Error() string { return e.msg }

func invalidf(format string, args ...any) error {
	return &inputError{code: codes.InvalidArgument, msg: fmt.Sprintf(format, args...)}
}

// callerIdle is the error of an upload whose caller sent no byte for d.
func callerIdle(d time.Duration, received int64) error {
	return &inputError{code: codes.DeadlineExceeded, reason: reasonCallerIdle,
		msg: fmt.Sprintf("no data from the caller for %s: upload abandoned after %d bytes", d, received)}
}

func notFoundf(format string, args ...any) error {
	return &inputError{code: codes.NotFound, msg: fmt.Sprintf(format, args...)}
}

func deniedf(format string, args ...any) error {
	return &inputError{code: codes.PermissionDenied, msg: fmt.Sprintf(format, args...)}
}

// overQuota is a caller's quota refusal: ResourceExhausted, with RetryInfo
// when waiting retry may help (0: it will not).
func overQuota(subject string, retry time.Duration, format string, args ...any) error {
	return &inputError{code: codes.ResourceExhausted, retry: retry, quota: subject, msg: fmt.Sprintf(format, args...)}
}

// The small interfaces through which the service reads the backend's
// errors without importing it.
type (
	httpStatusError   interface{ StatusCode() int }
	retryDelayError   interface{ RetryDelay() time.Duration }
	invalidInputError interface{ InvalidInput() bool }
)

// toStatus is the one place where errors become gRPC statuses. Every RPC
// returns through it.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	var in *inputError
	if errors.As(err, &in) {
		st := status.New(in.code, in.msg)
		var details []protoadapt.MessageV1
		if in.reason != "" {
			details = append(details, &errdetails.ErrorInfo{Reason: in.reason, Domain: errorDomain})
		}
		if in.quota != "" {
			details = append(details, &errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: in.quota, Description: in.msg}}})
		}
		if in.retry > 0 {
			details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(in.retry)})
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
