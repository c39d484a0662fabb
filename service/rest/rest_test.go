package rest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/gen"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/engine"
	"github.com/mediagw/mediagw/service/grpcapi"
	"github.com/mediagw/mediagw/service/policy"
	"github.com/mediagw/mediagw/service/relay"
)

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
	if k, ok := headerMatcher("X-Access-Token"); !ok || k != engine.TokenMetadataKey {
		t.Fatalf("X-Access-Token: %q %v", k, ok)
	}
	for _, h := range []string{"Grpc-Metadata-X-Access-Token", "Grpc-Metadata-Authorization", "Authorization", "Cookie", "X-Forwarded-For", "Traceparent"} {
		if k, ok := headerMatcher(h); ok {
			t.Errorf("%s forwarded as %q", h, k)
		}
	}
}

// TestGatewayFailsClosed: with authentication configured, the gateway
// reached without the middleware refuses every call, even one with a good
// token: the Authorization header that grpc-gateway forwards as metadata
// is never read as an identity.
func TestGatewayFailsClosed(t *testing.T) {
	gw, _ := newAuthServer(t)
	for _, path := range []string{"/v1/media/1/status", "/v1/media/1/status:watch", "/v1/uploads/k"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer good")
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "the call was not authenticated") {
			t.Errorf("%s without the middleware: HTTP %d %s", path, rec.Code, rec.Body)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/media:upload?media_type=image/png", strings.NewReader("\x89PNG\r\n\x1a\n"))
	req.Header.Set("Authorization", "Bearer good")
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("upload without the middleware: HTTP %d %s", rec.Code, rec.Body)
	}
}

// nopBackend is never reached: every call of these tests is refused first.
type nopBackend struct{}

func (nopBackend) Begin(context.Context, backend.Auth, backend.Spec) (backend.Session, error) {
	return nil, errors.New("not used")
}
func (nopBackend) Resume(context.Context, backend.Auth, backend.Spec, backend.ResumeAt) (backend.Session, error) {
	return nil, errors.New("not used")
}
func (nopBackend) Status(context.Context, backend.Auth, string) (backend.Media, error) {
	return backend.Media{}, errors.New("not used")
}

// newAuthServer is a gateway whose engine requires authentication.
func newAuthServer(t *testing.T) (*Gateway, struct{}) {
	t.Helper()
	h, err := relay.New(relay.Config{Backend: nopBackend{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	e, err := engine.New(engine.Config{Backend: nopBackend{}, Relay: h, Policies: policy.New(false), Authenticated: true})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := NewGateway(grpcapi.New(e, h), e, h, GatewayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return gw, struct{}{}
}
