package apierr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// xError stands for an error of the upstream adapter, seen only through
// the interfaces the service declares.
type xError struct {
	code  int
	delay time.Duration
}

func (e xError) Error() string             { return fmt.Sprintf("X HTTP %d", e.code) }
func (e xError) StatusCode() int           { return e.code }
func (e xError) RetryDelay() time.Duration { return e.delay }

// invalidInput stands for the adapter's caller-mistake sentinels.
type invalidInput struct{}

func (invalidInput) Error() string      { return "more bytes than the declared total" }
func (invalidInput) InvalidInput() bool { return true }

// xTimeout stands for the adapter's error after every attempt timed out:
// it says 504 and wraps the attempt's context.DeadlineExceeded.
type xTimeout struct{}

func (xTimeout) Error() string   { return "X STATUS failed after 5 attempts: context deadline exceeded" }
func (xTimeout) StatusCode() int { return http.StatusGatewayTimeout }
func (xTimeout) Unwrap() error   { return context.DeadlineExceeded }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func TestToStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		err   error
		code  codes.Code
		retry time.Duration
	}{
		{"input", Invalidf("bad"), codes.InvalidArgument, 0},
		{"not found", NotFoundf("gone"), codes.NotFound, 0},
		{"status passes through", status.Error(codes.Aborted, "x"), codes.Aborted, 0},
		{"canceled", fmt.Errorf("wrapped: %w", context.Canceled), codes.Canceled, 0},
		{"deadline", fmt.Errorf("wrapped: %w", context.DeadlineExceeded), codes.DeadlineExceeded, 0},
		{"adapter input error", fmt.Errorf("w: %w", invalidInput{}), codes.InvalidArgument, 0},
		{"X 400", xError{code: 400}, codes.InvalidArgument, 0},
		{"X 413", xError{code: 413}, codes.InvalidArgument, 0},
		{"X 401", xError{code: 401}, codes.Unauthenticated, 0},
		{"X 403", xError{code: 403}, codes.PermissionDenied, 0},
		{"X 404", xError{code: 404}, codes.NotFound, 0},
		{"X 409", xError{code: 409}, codes.FailedPrecondition, 0},
		{"X 429", fmt.Errorf("w: %w", xError{code: 429, delay: 90 * time.Second}), codes.ResourceExhausted, 90 * time.Second},
		{"X 429 without reset", xError{code: 429}, codes.ResourceExhausted, 0},
		{"X 503", xError{code: 503, delay: 2 * time.Second}, codes.Unavailable, 2 * time.Second},
		{"X 500", xError{code: 500}, codes.Unavailable, 0},
		{"X 408", xError{code: 408}, codes.Unavailable, 0},
		{"network", &net.OpError{Op: "dial", Err: timeoutErr{}}, codes.Unavailable, 0},
		{"X timed out on every attempt", xTimeout{}, codes.Unavailable, 0},
		{"other", errors.New("boom"), codes.Internal, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := status.Convert(ToStatus(tc.err))
			if st.Code() != tc.code {
				t.Fatalf("code = %v, want %v (%v)", st.Code(), tc.code, st.Message())
			}
			var got time.Duration
			for _, d := range st.Details() {
				if ri, ok := d.(*errdetails.RetryInfo); ok {
					got = ri.GetRetryDelay().AsDuration()
				}
			}
			if got != tc.retry {
				t.Fatalf("retry delay = %v, want %v", got, tc.retry)
			}
		})
	}
	if ToStatus(nil) != nil {
		t.Fatal("ToStatus(nil) != nil")
	}
}

func TestWriteProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err        error
		httpStatus int
		code       string
		retryAfter string
	}{
		{ToStatus(Invalidf("media_type is required")), 400, "INVALID_ARGUMENT", ""},
		{ToStatus(NotFoundf("nope")), 404, "NOT_FOUND", ""},
		{ToStatus(xError{code: 401}), 401, "UNAUTHENTICATED", ""},
		{ToStatus(xError{code: 403}), 403, "PERMISSION_DENIED", ""},
		{ToStatus(xError{code: 429, delay: 1500 * time.Millisecond}), 429, "RESOURCE_EXHAUSTED", "2"},
		{ToStatus(xError{code: 503}), 503, "UNAVAILABLE", ""},
		{status.Error(codes.Canceled, "gone"), 499, "CANCELLED", ""},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		WriteProblem(rec, tc.err)
		if rec.Code != tc.httpStatus {
			t.Errorf("%v: HTTP %d, want %d", tc.err, rec.Code, tc.httpStatus)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%v: Content-Type %q", tc.err, ct)
		}
		body := rec.Body.String()
		wantCode := fmt.Sprintf(`"code":%q`, tc.code)
		wantStatus := fmt.Sprintf(`"status":%d`, tc.httpStatus)
		if !strings.Contains(body, wantCode) || !strings.Contains(body, wantStatus) || !strings.Contains(body, `"title":`) {
			t.Errorf("%v: body %s lacks %s / %s", tc.err, body, wantCode, wantStatus)
		}
		if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
			t.Errorf("%v: Retry-After %q, want %q", tc.err, got, tc.retryAfter)
		}
	}
}

// TestHTTPStatusIsTheGateways: the table answers every code with the HTTP
// status grpc-gateway maps it to (the unary routes' errors go through the
// gateway's own mapping first), and FromProblem reads every problem back
// into its code.
func TestHTTPStatusIsTheGateways(t *testing.T) {
	t.Parallel()
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if got, want := HTTPStatus(c), runtime.HTTPStatusFromCode(c); got != want {
			t.Errorf("%v: HTTP %d, the gateway says %d", c, got, want)
		}
		if c == codes.OK {
			continue
		}
		rec := httptest.NewRecorder()
		WriteProblem(rec, status.Error(c, "x"))
		back := status.Convert(FromProblem(rec.Code, rec.Header(), rec.Body.Bytes()))
		if back.Code() != c || back.Message() != "x" {
			t.Errorf("%v read back as %v %q", c, back.Code(), back.Message())
		}
	}
	// A proxy's answer with no problem body: the code of its status.
	if got := status.Code(FromProblem(502, nil, []byte("<html>bad gateway</html>"))); got != codes.Unavailable {
		t.Errorf("a proxy's 502: %v", got)
	}
	// An interruption's state and a retry delay survive the round trip.
	rec := httptest.NewRecorder()
	WriteProblem(rec, &Error{Code: codes.ResourceExhausted, Msg: "slow down", Retry: 3 * time.Second, Reason: "RATE_LIMITED"})
	st := status.Convert(FromProblem(rec.Code, rec.Header(), rec.Body.Bytes()))
	var retry time.Duration
	var reason string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			retry = d.GetRetryDelay().AsDuration()
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		}
	}
	if st.Code() != codes.ResourceExhausted || retry != 3*time.Second || reason != "RATE_LIMITED" {
		t.Errorf("read back %v, retry %v, reason %q", st, retry, reason)
	}
}
