package service

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// tokens accepts the token "good" as caller svc.
type tokens struct{}

func (tokens) Verify(_ context.Context, tok string) (string, error) {
	if tok == "good" {
		return "svc", nil
	}
	return "", &TokenError{Reason: "SIGNATURE", Detail: "the token's signature does not verify"}
}

func newAuthServer(t *testing.T) (*Server, *Authenticator) {
	t.Helper()
	a, err := NewAuthenticator(AuthConfig{Tokens: tokens{}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Backend: nopBackend{}, Authenticator: a})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, a
}

// TestMiddleware: the caller reaches the handler only through the
// middleware's context value, with the token's subject.
func TestMiddleware(t *testing.T) {
	_, a := newAuthServer(t)
	var seen []string
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := identityFrom(r.Context())
		seen = append(seen, id.ID)
		if !ok {
			t.Error("no identity in the context")
		}
	}))
	for _, c := range []struct {
		authorization string
		code          int
		challenge     string
	}{
		{"", 401, `Bearer realm="mediagw"`},
		{"Bearer bad", 401, `Bearer realm="mediagw", error="invalid_token", error_description="bearer token refused: the token's signature does not verify"`},
		{"Bearer good", 200, ""},
	} {
		req := httptest.NewRequest(http.MethodGet, "/v1/media/1/status", nil)
		if c.authorization != "" {
			req.Header.Set("Authorization", c.authorization)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.code || rec.Header().Get("WWW-Authenticate") != c.challenge {
			t.Errorf("%q: HTTP %d, WWW-Authenticate %q", c.authorization, rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
		if c.code == 401 {
			var p problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code != "UNAUTHENTICATED" || strings.Contains(p.Detail, "bad") {
				t.Errorf("%q: problem %+v %v", c.authorization, p, err)
			}
		}
	}
	if strings.Join(seen, ",") != "svc" {
		t.Fatalf("the handler saw callers %v", seen)
	}
}

// TestGatewayFailsClosed: with authentication configured, the gateway
// reached without the middleware refuses every call, even one with a good
// token: the Authorization header that grpc-gateway forwards as metadata
// is never read as an identity.
func TestGatewayFailsClosed(t *testing.T) {
	s, _ := newAuthServer(t)
	gw, err := NewGateway(s, GatewayOptions{})
	if err != nil {
		t.Fatal(err)
	}
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
