package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// The iss and aud of the tests' tokens.
const (
	testIssuer   = "https://issuer.test"
	testAudience = "mediagw"
)

// jwtFlags are the flags that verify tokens against the JWKS at source.
func jwtFlags(source string) []string {
	return []string{"--auth-jwks=" + source, "--auth-issuer=" + testIssuer, "--auth-audience=" + testAudience}
}

// signingKey is a key tokens are signed with in a test.
type signingKey struct {
	kid    string
	method jwt.SigningMethod
	key    crypto.Signer
}

func rsaKey(t *testing.T, kid string) signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, method: jwt.SigningMethodRS256, key: k}
}

func ecKey(t *testing.T, kid string) signingKey {
	return signingKey{kid: kid, method: jwt.SigningMethodES256, key: newKey(t)}
}

func edKey(t *testing.T, kid string) signingKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, method: jwt.SigningMethodEdDSA, key: k}
}

// jwks is the JWK Set of the keys' public halves.
func jwks(t *testing.T, keys ...signingKey) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		alg := jwkset.ALG(k.method.Alg())
		j, err := jwkset.NewJWKFromKey(k.key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: alg, USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// claims are valid claims for sub; edit changes them.
func claims(sub string, edit ...func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": sub,
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	for _, f := range edit {
		f(c)
	}
	return c
}

func (k signingKey) sign(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method, c)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func withBearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func withRawAuthorization(ctx context.Context, v string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", v)
}

// conn is the connection of e.client.
func (e *env) conn() *grpc.ClientConn { return e.cc }

// dial returns a client of e's gRPC port over TLS with cfg.
func (e *env) dial(cfg *tls.Config) mediagwv1.MediaUploadServiceClient {
	e.t.Helper()
	conn, err := grpc.NewClient(e.app.grpcLis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = conn.Close() })
	return mediagwv1.NewMediaUploadServiceClient(conn)
}

// httpsClient is an HTTP client with cfg.
func httpsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 30 * time.Second}
}

// xCalls is how many requests the emulator received.
func (e *env) xCalls() int64 {
	var n int64
	for _, v := range e.x.X.Stats().Requests {
		n += v
	}
	return n
}

// readProblem reads a REST answer: status, JSON body and headers.
func readProblem(t *testing.T, resp *http.Response) (int, map[string]any, http.Header) {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("HTTP %d: body %q is not JSON", resp.StatusCode, b)
	}
	return resp.StatusCode, p, resp.Header
}

// authRecorder is an X emulator front that records the Authorization
// header of every request by path, to tell which account a call used.
type authRecorder struct {
	next http.Handler
	mu   sync.Mutex
	seen map[string]int // Authorization value → requests
}

func (a *authRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	if a.seen == nil {
		a.seen = map[string]int{}
	}
	a.seen[r.Header.Get("Authorization")]++
	a.mu.Unlock()
	a.next.ServeHTTP(w, r)
}

// prefixed counts requests whose Authorization starts with prefix.
func (a *authRecorder) prefixed(prefix string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for v, k := range a.seen {
		if strings.HasPrefix(v, prefix) {
			n += k
		}
	}
	return n
}

func (a *authRecorder) count(authorization string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[authorization]
}
