package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// ErrorDomain is the ErrorInfo domain of mediagw's reasons.
const ErrorDomain = "mediagw"

// Reasons this package sets itself (mediagw's own reasons, such as
// CALLER_IDLE or TOKEN_EXPIRED, come from its ErrorInfo details).
const (
	// ReasonTLSHandshake: the TLS handshake failed (no or a refused client
	// certificate, an unknown authority, a wrong server name). Never
	// retried.
	ReasonTLSHandshake = "TLS_HANDSHAKE"
	// ReasonNotResumable: the upload broke after bytes were read from a
	// plain io.Reader, which cannot be read again.
	ReasonNotResumable = "NOT_RESUMABLE"
	// ReasonLocal: reading the source failed on this side.
	ReasonLocal = "LOCAL"
	// ReasonGaveUp: the retries or the total deadline ran out; the last
	// error is wrapped.
	ReasonGaveUp = "GAVE_UP"
)

// Error is every error the client returns for a call mediagw answered,
// refused, or could not be reached for. Use errors.As(err, &e) with a
// *Error to read it.
type Error struct {
	// Code is the gRPC code (REST answers are mapped back to it).
	Code codes.Code
	// Message is mediagw's message (or the transport's).
	Message string
	// Reason is the ErrorInfo reason of domain mediagw (for example
	// CALLER_IDLE, TOKEN_EXPIRED) or one of this package's Reason…
	// constants; empty when none applies. REST problem documents carry no
	// reason: over REST only CALLER_IDLE (HTTP 408) and this package's own
	// are set.
	Reason string
	// RetryAfter is how long mediagw asked to wait (RetryInfo, REST
	// Retry-After); 0 when it did not say.
	RetryAfter time.Duration
	// Quota lists the quota violations of a QuotaFailure detail.
	Quota []QuotaViolation
	// Violations lists the field violations of a BadRequest detail.
	Violations []FieldViolation
	// Upload is where a keyed upload stands when mediagw attached it (an
	// interrupted upload, a resume at the wrong offset), or as the client
	// last knew it.
	Upload *mediagwv1.UploadState
	// IdempotencyKey is the upload's key, when the call had one.
	IdempotencyKey string
	// Attempts is how many attempts the call made (Upload and Watch).
	Attempts int

	err error // the underlying error, if any
}

// QuotaViolation is one violation of a caller's quota.
type QuotaViolation struct {
	Subject, Description string
}

// FieldViolation is one bad field of a request.
type FieldViolation struct {
	Field, Description string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code.String())
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Reason != "" && e.Reason != ReasonGaveUp && e.Reason != ReasonLocal {
		fmt.Fprintf(&b, " (%s)", e.Reason)
	}
	return b.String()
}

// Unwrap returns the underlying error (a context error, a file error, the
// last error before giving up).
func (e *Error) Unwrap() error { return e.err }

// GRPCStatus lets status.Code and status.Convert read an *Error.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// Committed returns the bytes X holds of the upload (where a resume
// starts) and whether the error says.
func (e *Error) Committed() (int64, bool) {
	if e.Upload == nil {
		return 0, false
	}
	return e.Upload.GetCommittedBytes(), true
}

// IsRetryable says whether retrying the call (a resume, for an upload)
// may succeed: Unavailable (but not a TLS handshake failure), Aborted,
// DeadlineExceeded, ResourceExhausted with a RetryAfter, and
// FailedPrecondition that carries the UploadState to resume from.
// Permanent errors (Unauthenticated, PermissionDenied, InvalidArgument,
// NotFound, a refused TLS handshake, a local read error) are not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if !errors.As(err, &e) {
		e = convert(err)
	}
	return e.retryable()
}

func (e *Error) retryable() bool {
	switch e.Reason {
	case ReasonTLSHandshake, ReasonLocal, ReasonNotResumable, ReasonGaveUp:
		return false
	}
	switch e.Code {
	case codes.Unavailable, codes.Aborted, codes.DeadlineExceeded:
		return !errors.Is(e.err, context.DeadlineExceeded) && !errors.Is(e.err, context.Canceled)
	case codes.ResourceExhausted:
		return e.RetryAfter > 0
	case codes.FailedPrecondition:
		return e.Upload != nil
	}
	return false
}

// convert reads any error of a call into an *Error: a gRPC status with
// its details, a context error, a TLS failure.
func convert(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Code: codes.Canceled, Message: err.Error(), err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: codes.DeadlineExceeded, Message: err.Error(), err: err}
	}
	st, ok := status.FromError(err)
	if !ok {
		e = &Error{Code: codes.Unknown, Message: err.Error(), err: err}
		if isTLSError(err) {
			e.Code, e.Reason = codes.Unavailable, ReasonTLSHandshake
		}
		return e
	}
	e = fromStatus(st)
	e.err = err
	return e
}

func fromStatus(st *status.Status) *Error {
	e := &Error{Code: st.Code(), Message: st.Message()}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetDomain() == ErrorDomain {
				e.Reason = d.GetReason()
			}
		case *errdetails.RetryInfo:
			e.RetryAfter = d.GetRetryDelay().AsDuration()
		case *errdetails.QuotaFailure:
			for _, v := range d.GetViolations() {
				e.Quota = append(e.Quota, QuotaViolation{Subject: v.GetSubject(), Description: v.GetDescription()})
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.Violations = append(e.Violations, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		case *mediagwv1.UploadState:
			e.Upload = d
		}
	}
	if e.Code == codes.Unavailable && e.Reason == "" && tlsMessage(e.Message) {
		e.Reason = ReasonTLSHandshake
	}
	return e
}

// tlsMessage recognises a failed TLS handshake in a gRPC transport
// message: grpc-go reports it as Unavailable with the TLS error's text
// ("authentication handshake failed: tls: …", "x509: …", or, under TLS
// 1.3, the server's alert on the first read: "remote error: tls: …").
func tlsMessage(msg string) bool {
	return strings.Contains(msg, "authentication handshake failed") ||
		strings.Contains(msg, "tls: ") || strings.Contains(msg, "x509: ")
}

func isTLSError(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		hn x509.HostnameError
		ci x509.CertificateInvalidError
		al tls.AlertError
		rh tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci),
		errors.As(err, &al), errors.As(err, &rh):
		return true
	}
	return tlsMessage(err.Error())
}

// localError is a failure on this side: reading the source.
func localError(err error, key string) *Error {
	return &Error{Code: codes.Unknown, Message: err.Error(), Reason: ReasonLocal, IdempotencyKey: key, err: err}
}
