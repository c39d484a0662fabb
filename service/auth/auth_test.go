package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/service/apierr"
)

// tokens accepts the token "good" as caller svc.
type tokens struct{}

func (tokens) Verify(_ context.Context, tok string) (string, error) {
	if tok == "good" {
		return "svc", nil
	}
	return "", &TokenError{Reason: "SIGNATURE", Detail: "the token's signature does not verify"}
}

// TestMiddleware: the caller reaches the handler only through the
// middleware's context value, with the token's subject.
func TestMiddleware(t *testing.T) {
	a, err := New(Config{Tokens: tokens{}})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := IdentityFrom(r.Context())
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
			var p apierr.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code != "UNAUTHENTICATED" || strings.Contains(p.Detail, "bad") {
				t.Errorf("%q: problem %+v %v", c.authorization, p, err)
			}
		}
	}
	if strings.Join(seen, ",") != "svc" {
		t.Fatalf("the handler saw callers %v", seen)
	}
}
