package apierr

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// Problem is an RFC 7807 problem document, the body of every REST error.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Code is the gRPC status code name (for example INVALID_ARGUMENT).
	Code string `json:"code"`
	// Reason is the ErrorInfo reason of the status, when it has one
	// (for example CALLER_IDLE).
	Reason string `json:"reason,omitempty"`
	// RetryAfterSeconds repeats the Retry-After header when waiting may
	// help (X's rate limit, mediagw at its limits).
	RetryAfterSeconds int64 `json:"retry_after_seconds,omitempty"`
	// IdempotencyKey and CommittedBytes say where an interrupted upload
	// stands (resume it at committed_bytes).
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	CommittedBytes *int64 `json:"committed_bytes,omitempty"`
	// Violations are the rules the request breaks (the media's, for an
	// upload X would reject), each with its limit and actual value; the
	// problem's status is then 422.
	Violations []ProblemViolation `json:"violations,omitempty"`
}

// ProblemViolation is one broken rule in a problem document: a BadRequest
// field violation and its ErrorInfo in one.
type ProblemViolation struct {
	Reason string `json:"reason"`
	Field  string `json:"field"`
	Limit  string `json:"limit,omitempty"`
	Actual string `json:"actual,omitempty"`
	Detail string `json:"detail"`
}

// httpStatus is the HTTP status of each gRPC code: grpc-gateway's mapping
// (a test holds them equal), with 499 for Canceled.
var httpStatus = map[codes.Code]int{
	codes.OK:                 http.StatusOK,
	codes.Canceled:           499,
	codes.Unknown:            http.StatusInternalServerError,
	codes.InvalidArgument:    http.StatusBadRequest,
	codes.DeadlineExceeded:   http.StatusGatewayTimeout,
	codes.NotFound:           http.StatusNotFound,
	codes.AlreadyExists:      http.StatusConflict,
	codes.PermissionDenied:   http.StatusForbidden,
	codes.Unauthenticated:    http.StatusUnauthorized,
	codes.ResourceExhausted:  http.StatusTooManyRequests,
	codes.FailedPrecondition: http.StatusBadRequest,
	codes.Aborted:            http.StatusConflict,
	codes.OutOfRange:         http.StatusBadRequest,
	codes.Unimplemented:      http.StatusNotImplemented,
	codes.Internal:           http.StatusInternalServerError,
	codes.Unavailable:        http.StatusServiceUnavailable,
	codes.DataLoss:           http.StatusInternalServerError,
}

// HTTPStatus is the HTTP status of a gRPC code.
func HTTPStatus(c codes.Code) int {
	if s, ok := httpStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// NewProblem converts an error (through [ToStatus]) to its problem
// document, whose Status is the HTTP status to answer with.
//
// A status with BadRequest field violations (media that breaks X's rules)
// answers 422 Unprocessable Content, not InvalidArgument's 400: the request
// itself was well formed and read to its end, it is the media it carries
// that X would reject, so a client must change the media rather than the
// request. The unary routes never carry violations, so their statuses stay
// those of grpc-gateway's table.
func NewProblem(err error) Problem {
	st := status.Convert(ToStatus(err))
	hs := HTTPStatus(st.Code())
	p := Problem{Type: "about:blank", Status: hs, Detail: st.Message(), Code: CodeName(st.Code())}
	byReason := map[string]*errdetails.ErrorInfo{}
	var fields []*errdetails.BadRequest_FieldViolation
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			if d.GetRetryDelay() != nil {
				p.RetryAfterSeconds = int64(math.Ceil(d.GetRetryDelay().AsDuration().Seconds()))
			}
		case *errdetails.BadRequest:
			fields = append(fields, d.GetFieldViolations()...)
		case *errdetails.ErrorInfo:
			if d.GetDomain() == Domain && p.Reason == "" {
				p.Reason = d.GetReason()
			}
			if d.GetDomain() == Domain && d.GetMetadata() != nil {
				byReason[d.GetReason()+"\x00"+d.GetMetadata()["field"]] = d
			}
			if d.GetDomain() == Domain && d.GetReason() == ReasonCallerIdle {
				p.Status = http.StatusRequestTimeout
			}
		case *mediagwv1.UploadState:
			n := d.GetCommittedBytes()
			p.IdempotencyKey, p.CommittedBytes = d.GetIdempotencyKey(), &n
			if st.Code() == codes.FailedPrecondition {
				// A resume at the wrong offset conflicts with the upload's
				// state: 409, with where it stands.
				p.Status = http.StatusConflict
			}
		}
	}
	for _, f := range fields {
		v := ProblemViolation{Reason: f.GetReason(), Field: f.GetField(), Detail: f.GetDescription()}
		if info := byReason[f.GetReason()+"\x00"+f.GetField()]; info != nil {
			v.Limit, v.Actual = info.GetMetadata()["limit"], info.GetMetadata()["actual"]
		}
		p.Violations = append(p.Violations, v)
	}
	if len(p.Violations) > 0 {
		p.Status = http.StatusUnprocessableEntity
	}
	p.Title = statusText(p.Status)
	return p
}

func statusText(s int) string {
	if s == 499 {
		return "Client Closed Request" // which net/http has no text for
	}
	return http.StatusText(s)
}

// CodeName is a gRPC code's canonical name (INVALID_ARGUMENT).
func CodeName(c codes.Code) string {
	if n, ok := code.Code_name[int32(c)]; ok {
		return n
	}
	return c.String()
}

// ParseCode is the code of a canonical name; false for an unknown name.
func ParseCode(name string) (codes.Code, bool) {
	v, ok := code.Code_value[name]
	return codes.Code(v), ok
}

// WriteProblem answers err as a problem document, with Retry-After when
// waiting may help.
func WriteProblem(w http.ResponseWriter, err error) {
	p := NewProblem(err)
	h := w.Header()
	h.Del("Trailer")
	if p.RetryAfterSeconds > 0 {
		h.Set("Retry-After", strconv.FormatInt(p.RetryAfterSeconds, 10))
	}
	WriteHTTPProblem(w, p)
}

// WriteHTTPProblem writes p with its status.
func WriteHTTPProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// FromProblem reads an HTTP answer that is not a success back into the
// status error mediagw converted: the code named by the problem (or, from
// a proxy that sent no problem, the code this table maps the HTTP status
// from), its reason, RetryInfo (from retry_after_seconds or Retry-After)
// and the UploadState of an interrupted upload.
func FromProblem(httpStatus int, header http.Header, body []byte) error {
	var p struct {
		Problem
		CommittedBytes json.RawMessage `json:"committed_bytes"`
	}
	perr := json.Unmarshal(body, &p)
	c, known := codes.Code(0), false
	if perr == nil && p.Code != "" {
		c, known = ParseCode(p.Code)
	}
	if !known {
		c = codeForHTTP(httpStatus)
	}
	msg := p.Detail
	if perr != nil || msg == "" {
		msg = strings.TrimSpace(fmt.Sprintf("HTTP %d %s", httpStatus, statusText(httpStatus)))
	}
	st := status.New(c, msg)
	var details []protoadapt.MessageV1
	if p.Reason != "" && len(p.Violations) == 0 {
		details = append(details, &errdetails.ErrorInfo{Reason: p.Reason, Domain: Domain})
	}
	if len(p.Violations) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range p.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Detail, Reason: v.Reason})
		}
		details = append(details, br)
		for _, v := range p.Violations {
			details = append(details, &errdetails.ErrorInfo{Reason: v.Reason, Domain: Domain,
				Metadata: Violation{Field: v.Field, Limit: v.Limit, Actual: v.Actual}.metadata()})
		}
	}
	if n, ok := jsonInt64(p.CommittedBytes); ok {
		details = append(details, &mediagwv1.UploadState{IdempotencyKey: p.IdempotencyKey, CommittedBytes: n})
	}
	secs := p.RetryAfterSeconds
	if secs <= 0 && header != nil {
		secs, _ = strconv.ParseInt(strings.TrimSpace(header.Get("Retry-After")), 10, 64)
	}
	if secs > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(secs) * time.Second)})
	}
	if len(details) > 0 {
		if d, err := st.WithDetails(details...); err == nil {
			st = d
		}
	}
	return st.Err()
}

// jsonInt64 reads a JSON number or a string holding one (protojson's
// int64 form).
func jsonInt64(raw json.RawMessage) (int64, bool) {
	s := strings.Trim(string(raw), `"`)
	if s == "" || s == "null" {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// codeForHTTP maps an HTTP status with no problem code back to the code
// that answers with it (the first in the table's order for statuses that
// several codes share).
func codeForHTTP(s int) codes.Code {
	switch s {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusConflict:
		return codes.FailedPrecondition
	case http.StatusRequestTimeout:
		return codes.DeadlineExceeded
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codes.Unavailable
	}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if httpStatus[c] == s && c != codes.OK {
			return c
		}
	}
	return codes.Unknown
}
