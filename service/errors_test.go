package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mediagw/mediagw/gen"
)

// nopBackend is never reached by the pure-function tests that use it.
type nopBackend struct{}

func (nopBackend) Begin(context.Context, Auth, Spec) (Session, error) {
	return nil, errors.New("not used")
}
func (nopBackend) Resume(context.Context, Auth, Spec, ResumeAt) (Session, error) {
	return nil, errors.New("not used")
}
func (nopBackend) Status(context.Context, Auth, string) (Media, error) {
	return Media{}, errors.New("not used")
}

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
		{"input", invalidf("bad"), codes.InvalidArgument, 0},
		{"not found", notFoundf("gone"), codes.NotFound, 0},
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
			st := status.Convert(toStatus(tc.err))
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
	if toStatus(nil) != nil {
		t.Fatal("toStatus(nil) != nil")
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
		{toStatus(invalidf("media_type is required")), 400, "INVALID_ARGUMENT", ""},
		{toStatus(notFoundf("nope")), 404, "NOT_FOUND", ""},
		{toStatus(xError{code: 401}), 401, "UNAUTHENTICATED", ""},
		{toStatus(xError{code: 403}), 403, "PERMISSION_DENIED", ""},
		{toStatus(xError{code: 429, delay: 1500 * time.Millisecond}), 429, "RESOURCE_EXHAUSTED", "2"},
		{toStatus(xError{code: 503}), 503, "UNAVAILABLE", ""},
		{status.Error(codes.Canceled, "gone"), 499, "CANCELLED", ""},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		writeProblem(context.Background(), nil, nil, rec, nil, tc.err)
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

func TestStartFromValues(t *testing.T) {
	t.Parallel()
	v := url.Values{
		"media_type":        {"video/mp4"},
		"media_category":    {"amplify_video"},
		"total_bytes":       {"123"},
		"additional_owners": {"1,2", " 3 "},
		"shared":            {"true"},
	}
	st, err := startFromValues(v)
	if err != nil {
		t.Fatal(err)
	}
	if st.GetTotalBytes() != 123 || st.GetMediaCategory().String() != "MEDIA_CATEGORY_AMPLIFY_VIDEO" ||
		strings.Join(st.GetAdditionalOwners(), ",") != "1,2,3" || !st.GetShared() {
		t.Fatalf("start = %v", st)
	}
	for field, bad := range map[string]string{"total_bytes": "12x", "shared": "maybe", "media_category": "vines"} {
		w := url.Values{"media_type": {"video/mp4"}, "total_bytes": {"1"}}
		w.Set(field, bad)
		if _, err := startFromValues(w); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s=%s: error %v should name the value", field, bad, err)
		}
	}
}

func TestRawStartDefaults(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/v1/media:upload", strings.NewReader("12345"))
	st, err := rawStart(r, r.URL.Query(), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	if st.GetMediaType() != "image/png" || st.GetTotalBytes() != 5 {
		t.Fatalf("start = %v, want media_type from Content-Type and total from Content-Length", st)
	}
	r = httptest.NewRequest(http.MethodPost, "/v1/media:upload?media_type=video/mp4", strings.NewReader("x"))
	r.ContentLength = -1
	if st, err := rawStart(r, r.URL.Query(), ""); err != nil || st.GetTotalBytes() != 0 {
		t.Fatalf("chunked body without total_bytes: %v %v, want total 0 (unknown, spooled)", st, err)
	}
}

func TestValidMediaID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"1", "1912475018862166016"} {
		if err := validMediaID(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "abc", "12/34", "../1", "123456789012345678901", "1 2"} {
		if err := validMediaID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRoute(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/v1/media/123/status:watch": "/v1/media/{media_id}/status:watch",
		"/v1/media/123/status":       "/v1/media/{media_id}/status",
		"/v1/media//status:watch":    "/*",
		"/v1/media/1/2/status:watch": "/*",
		"/v2/media/1/status:watch":   "/*",
		"/v1/uploads/k-1":            "/v1/uploads/{idempotency_key}",
		"/v1/media:upload":           "/v1/media:upload",
		"/x":                         "/*",
	} {
		if got := Route(path); got != want {
			t.Errorf("Route(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestCompleteOpenAPI(t *testing.T) {
	t.Parallel()
	doc, err := completeOpenAPI(gen.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Paths map[string]map[string]struct {
			Parameters []struct{ Name string } `json:"parameters"`
			Responses  map[string]struct {
				Schema struct {
					Ref string `json:"$ref"`
				} `json:"schema"`
			} `json:"responses"`
		} `json:"paths"`
		Definitions map[string]json.RawMessage `json:"definitions"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	up := d.Paths["/v1/media:upload"]["post"]
	if up.Responses["200"].Schema.Ref != "#/definitions/v1UploadResponse" || len(up.Parameters) < 6 {
		t.Fatalf("upload operation %+v", up)
	}
	for path, ops := range d.Paths {
		for method, op := range ops {
			if ref := op.Responses["default"].Schema.Ref; ref != "#/definitions/Problem" {
				t.Errorf("%s %s: default response %q, want Problem", method, path, ref)
			}
			for _, r := range op.Responses {
				ref := strings.TrimPrefix(r.Schema.Ref, "#/definitions/")
				if _, ok := d.Definitions[ref]; ref != "" && !ok {
					t.Errorf("%s %s refers to a missing definition %s", method, path, ref)
				}
			}
		}
	}
	if _, ok := d.Paths["/v1/media/{media_id}/status"]; !ok {
		t.Fatalf("paths %v: want proto field names (media_id)", d.Paths)
	}
}

func TestHeaderMatcherForwardsOnlyTheToken(t *testing.T) {
	t.Parallel()
	if k, ok := headerMatcher("X-Access-Token"); !ok || k != TokenMetadataKey {
		t.Fatalf("X-Access-Token: %q %v", k, ok)
	}
	for _, h := range []string{"Grpc-Metadata-X-Access-Token", "Grpc-Metadata-Authorization", "Authorization", "Cookie", "X-Forwarded-For", "Traceparent"} {
		if k, ok := headerMatcher(h); ok {
			t.Errorf("%s forwarded as %q", h, k)
		}
	}
}
