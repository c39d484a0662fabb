package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// restCall sends a REST request with an Authorization value (none when
// empty) and returns status, problem body and headers.
func restCall(t *testing.T, method, url, authorization string, body []byte) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return readProblem(t, resp)
}

func errorReason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}

// TestJWTRefusals sends every kind of bad credential over gRPC (Upload
// and GetStatus) and REST (upload and status) and checks the exact code,
// HTTP status, challenge and message; X must see none of them, and no
// token may appear in logs, spans or metrics.
func TestJWTRefusals(t *testing.T) {
	t.Parallel()
	k1, stranger := rsaKey(t, "k1"), rsaKey(t, "stranger")
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e := newEnvWith(t, xfake.Options{}, tp, jwtFlags(writeFile(t, "jwks.json", jwks(t, k1)))...)
	pub, _ := x509.MarshalPKIXPublicKey(k1.key.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	hmacWithPublicKey, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims("svc")).SignedString(pubPEM)
	algNone, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims("svc")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	forged := stranger
	forged.kid = "k1" // claims to be k1, signed with another key

	cases := []struct {
		name, authorization, reason, detail string
	}{
		{"no token", "", "TOKEN_MISSING", "no bearer token"},
		{"not a bearer", "Basic c3ZjOnB3", "TOKEN_MALFORMED", "must be Bearer"},
		{"malformed", "Bearer abc.def", "TOKEN_MALFORMED", "not a well-formed JWT"},
		{"expired", "Bearer " + k1.sign(t, claims("svc", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-5 * time.Minute).Unix() })), "TOKEN_EXPIRED", "the token has expired"},
		{"not yet valid", "Bearer " + k1.sign(t, claims("svc", func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(5 * time.Minute).Unix() })), "TOKEN_NOT_YET_VALID", "not valid yet"},
		{"wrong issuer", "Bearer " + k1.sign(t, claims("svc", func(c jwt.MapClaims) { c["iss"] = "https://evil.test" })), "TOKEN_ISSUER", "iss is not " + testIssuer},
		{"wrong audience", "Bearer " + k1.sign(t, claims("svc", func(c jwt.MapClaims) { c["aud"] = "other-service" })), "TOKEN_AUDIENCE", "aud does not include mediagw"},
		{"no exp", "Bearer " + k1.sign(t, claims("svc", func(c jwt.MapClaims) { delete(c, "exp") })), "TOKEN_CLAIMS", "lacks a required claim"},
		{"no sub", "Bearer " + k1.sign(t, claims("")), "TOKEN_CLAIMS", "no sub"},
		{"bad signature", "Bearer " + forged.sign(t, claims("svc")), "TOKEN_SIGNATURE", "signature does not verify"},
		{"unknown kid", "Bearer " + stranger.sign(t, claims("svc")), "TOKEN_UNKNOWN_KEY", "no key of the JWKS has the token's kid"},
		{"alg none", "Bearer " + algNone, "TOKEN_ALGORITHM", `alg "none" is not accepted`},
		{"HMAC with the public key", "Bearer " + hmacWithPublicKey, "TOKEN_ALGORITHM", `alg "HS256" is not accepted`},
	}
	data := media("image/png", 3000, 3)
	start := &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: int64(len(data))}
	var secrets []string
	for _, tc := range cases {
		if tok, ok := strings.CutPrefix(tc.authorization, "Bearer "); ok {
			secrets = append(secrets, tok)
		}
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.authorization != "" {
				ctx = withAuthorization(ctx, tc.authorization)
			}
			_, err := e.upload(ctx, start, data, fixed(1000))
			_, serr := e.client.GetStatus(ctx, &mediagwv1.GetStatusRequest{MediaId: "1"})
			for _, err := range []error{err, serr} {
				if codeOf(err) != "Unauthenticated" || !strings.Contains(status.Convert(err).Message(), tc.detail) || errorReason(err) != tc.reason {
					t.Errorf("gRPC: %v (reason %s), want Unauthenticated with %q, reason %s", err, errorReason(err), tc.detail, tc.reason)
				}
			}
			for _, call := range []struct{ method, path string }{
				{http.MethodPost, "/v1/media:upload?media_type=image/png"},
				{http.MethodGet, "/v1/media/1/status"},
				{http.MethodGet, "/v1/media/1/status:watch"},
			} {
				code, p, h := restCall(t, call.method, e.httpURL+call.path, tc.authorization, data)
				if code != http.StatusUnauthorized || p["code"] != "UNAUTHENTICATED" || !strings.Contains(p["detail"].(string), tc.detail) ||
					h.Get("Content-Type") != "application/problem+json" {
					t.Errorf("REST %s %s: HTTP %d %v, want 401 with %q", call.method, call.path, code, p, tc.detail)
				}
				if ch := h.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") {
					t.Errorf("REST %s: WWW-Authenticate %q", call.path, ch)
				}
				if tok, ok := strings.CutPrefix(tc.authorization, "Bearer "); ok && strings.Contains(fmt.Sprint(p, h), tok) {
					t.Errorf("REST %s echoes the token", call.path)
				}
			}
		})
	}
	if n := e.xCalls(); n != 0 {
		t.Fatalf("X received %d requests from refused callers", n)
	}

	// A good token still works, and is not in the telemetry either.
	good := k1.sign(t, claims("spiffe://example.org/video-svc"))
	secrets = append(secrets, good)
	if _, err := e.upload(withBearer(context.Background(), good), start, data, fixed(1000)); err != nil {
		t.Fatal(err)
	}
	logs, metrics := e.stopped()
	var b strings.Builder
	b.WriteString(logs)
	b.WriteString(metrics)
	for _, s := range rec.Ended() {
		fmt.Fprintln(&b, s.Name(), s.Status().Description, s.Attributes(), s.Events())
	}
	all := b.String()
	if !strings.Contains(all, `"caller":"spiffe://example.org/video-svc"`) || !strings.Contains(all, `mediagw_auth_refused_total{`) {
		t.Fatalf("telemetry lacks the caller or the refusals:\n%s", all)
	}
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Fatalf("a token appears in logs, spans or metrics: %.40s…", s)
		}
	}
	if got, _ := metricValue(metrics, "mediagw_auth_refused_total", `reason="TOKEN_EXPIRED"`); got != 5 {
		t.Errorf("mediagw_auth_refused_total{reason=TOKEN_EXPIRED} = %v, want 5 (2 gRPC + 3 REST)", got)
	}
}

func withAuthorization(ctx context.Context, v string) context.Context {
	if tok, ok := strings.CutPrefix(v, "Bearer "); ok {
		return withBearer(ctx, tok)
	}
	return withRawAuthorization(ctx, v)
}

// TestJWTAlgorithms: RS256, ES256 and EdDSA tokens are accepted, the
// caller is the token's sub, and the gRPC health service needs no token.
func TestJWTAlgorithms(t *testing.T) {
	t.Parallel()
	keys := []signingKey{rsaKey(t, "rsa"), ecKey(t, "ec"), edKey(t, "ed")}
	e := newEnv(t, xfake.Options{}, jwtFlags(writeFile(t, "jwks.json", jwks(t, keys...)))...)
	data := media("image/png", 3000, 4)
	start := &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: int64(len(data))}
	for _, k := range keys {
		tok := k.sign(t, claims("svc-"+k.kid))
		if _, err := e.upload(withBearer(context.Background(), tok), start, data, fixed(1000)); err != nil {
			t.Fatalf("%s: %v", k.method.Alg(), err)
		}
		if code, p, _ := restCall(t, http.MethodPost, e.httpURL+"/v1/media:upload?media_type=image/png", "Bearer "+tok, data); code != http.StatusOK {
			t.Fatalf("%s over REST: HTTP %d %v", k.method.Alg(), code, p)
		}
	}
	var got []string
	for _, l := range e.uploadLogs() {
		got = append(got, l["caller"].(string))
	}
	if want := "svc-rsa svc-rsa svc-ec svc-ec svc-ed svc-ed"; strings.Join(got, " ") != want {
		t.Fatalf("callers %q, want %q", strings.Join(got, " "), want)
	}
	h, err := healthpb.NewHealthClient(e.conn()).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health without a token: %v %v", h, err)
	}
}

// jwksServer serves a JWK Set that a test can replace, counting fetches.
type jwksServer struct {
	mu      sync.Mutex
	set     []byte
	fetches atomic.Int64
}

func (s *jwksServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.fetches.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.set)
}

func (s *jwksServer) replace(b []byte) {
	s.mu.Lock()
	s.set = b
	s.mu.Unlock()
}

// TestJWKSURLRotation: keys come from a JWKS URL; a token signed with a
// new key (an unknown kid) makes mediagw fetch the set again, and a key
// the set dropped is refused.
func TestJWKSURLRotation(t *testing.T) {
	t.Parallel()
	old, next := ecKey(t, "2026-01"), ecKey(t, "2026-02")
	js := &jwksServer{set: jwks(t, old)}
	srv := httptest.NewServer(js)
	t.Cleanup(srv.Close)
	e := newEnv(t, xfake.Options{}, jwtFlags(srv.URL+"/keys")...)
	get := func(tok string) error {
		_, err := e.client.GetStatus(withBearer(context.Background(), tok), &mediagwv1.GetStatusRequest{MediaId: "12345"})
		return err
	}
	// NotFound: authenticated, and the media is not this caller's.
	if err := get(old.sign(t, claims("svc"))); codeOf(err) != "NotFound" {
		t.Fatalf("old key: %v", err)
	}
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches at start, want 1", n)
	}
	js.replace(jwks(t, next))
	if err := get(next.sign(t, claims("svc"))); codeOf(err) != "NotFound" {
		t.Fatalf("rotated key: %v", err)
	}
	if n := js.fetches.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches after the rotation, want 2", n)
	}
	err := get(old.sign(t, claims("svc")))
	if codeOf(err) != "Unauthenticated" || errorReason(err) != "TOKEN_UNKNOWN_KEY" {
		t.Fatalf("dropped key: %v", err)
	}
	if n := js.fetches.Load(); n != 2 {
		t.Fatalf("an unknown kid right after a refresh fetched the JWKS again (%d fetches)", n)
	}
}

// TestJWKSFileReload: a JWKS file written anew is used without a restart.
func TestJWKSFileReload(t *testing.T) {
	t.Parallel()
	old, next := edKey(t, "a"), edKey(t, "b")
	path := writeFile(t, "jwks.json", jwks(t, old))
	e := newEnv(t, xfake.Options{}, jwtFlags(path)...)
	get := func(tok string) error {
		_, err := e.client.GetStatus(withBearer(context.Background(), tok), &mediagwv1.GetStatusRequest{MediaId: "12345"})
		return err
	}
	if err := get(next.sign(t, claims("svc"))); codeOf(err) != "Unauthenticated" {
		t.Fatalf("a key not yet in the file: %v", err)
	}
	if err := os.WriteFile(path, jwks(t, old, next), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the new key accepted after the file changed", func() bool { return codeOf(get(next.sign(t, claims("svc")))) == "NotFound" })
}
