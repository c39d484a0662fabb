package service

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// problem is an RFC 7807 problem document, the body of every REST error.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Code is the gRPC status code name (for example INVALID_ARGUMENT).
	Code string `json:"code"`
	// RetryAfterSeconds repeats the Retry-After header when X's rate limit
	// says when to try again.
	RetryAfterSeconds int64 `json:"retry_after_seconds,omitempty"`
	// IdempotencyKey and CommittedBytes say where an interrupted upload
	// stands (resume it at committed_bytes).
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	CommittedBytes *int64 `json:"committed_bytes,omitempty"`
}

// newProblem converts a gRPC status error to the HTTP status the gateway
// uses for its code and a problem document.
func newProblem(err error) problem {
	st := status.Convert(err)
	code := runtime.HTTPStatusFromCode(st.Code())
	p := problem{
		Type:   "about:blank",
		Title:  http.StatusText(code),
		Status: code,
		Detail: st.Message(),
		Code:   codeName(st),
	}
	if p.Title == "" {
		p.Title = "Client Closed Request" // 499, which net/http has no text for
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			if d.GetRetryDelay() != nil {
				p.RetryAfterSeconds = int64(math.Ceil(d.GetRetryDelay().AsDuration().Seconds()))
			}
		case *errdetails.ErrorInfo:
			if d.GetDomain() == errorDomain && d.GetReason() == reasonCallerIdle {
				p.Status, p.Title = http.StatusRequestTimeout, http.StatusText(http.StatusRequestTimeout)
			}
		case *mediagwv1.UploadState:
			n := d.GetCommittedBytes()
			p.IdempotencyKey, p.CommittedBytes = d.GetIdempotencyKey(), &n
			if st.Code() == codes.FailedPrecondition {
				// A resume at the wrong offset conflicts with the upload's
				// state: 409, with where it stands.
				p.Status, p.Title = http.StatusConflict, http.StatusText(http.StatusConflict)
			}
		}
	}
	return p
}

func codeName(st *status.Status) string {
	if n, ok := code.Code_name[int32(st.Code())]; ok {
		return n
	}
	return st.Code().String()
}

// writeProblem is the gateway's error handler.
func writeProblem(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, _ *http.Request, err error) {
	p := newProblem(err)
	h := w.Header()
	h.Del("Trailer")
	if p.RetryAfterSeconds > 0 {
		h.Set("Retry-After", strconv.FormatInt(p.RetryAfterSeconds, 10))
	}
	writeHTTPProblem(w, p)
}

func writeHTTPProblem(w http.ResponseWriter, p problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// routingProblem answers requests that match no route: 404, or 405 with
// the route's Allow header when only the method is wrong.
func routingProblem(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	var err error
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		allow := routes[Route(r.URL.Path)]
		w.Header().Set("Allow", allow)
		writeHTTPProblem(w, problem{Type: "about:blank", Title: http.StatusText(httpStatus), Status: httpStatus,
			Detail: fmt.Sprintf("%s is not allowed on %s; use %s", r.Method, Route(r.URL.Path), allow), Code: "UNIMPLEMENTED"})
		return
	case http.StatusBadRequest:
		err = status.Error(codes.InvalidArgument, "the request path is malformed")
	default:
		err = status.Errorf(codes.NotFound, "no route %s %s", r.Method, quote(r.URL.Path))
	}
	writeProblem(ctx, mux, m, w, r, err)
}
