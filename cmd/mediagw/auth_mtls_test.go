package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// mtlsEnv is mediagw with mTLS, its CA and a server certificate.
func mtlsEnv(t *testing.T, flags ...string) (*env, *testCA, issued) {
	t.Helper()
	ca := newTestCA(t, "mediagw-test")
	srv := ca.issue(leaf{cn: "mediagw", server: true})
	e := newEnv(t, xfake.Options{}, append([]string{"--tls-cert=" + srv.certFile, "--tls-key=" + srv.keyFile,
		"--tls-client-ca=" + ca.file}, flags...)...)
	return e, ca, srv
}

func TestMTLSIdentity(t *testing.T) {
	t.Parallel()
	e, ca, _ := mtlsEnv(t)
	spiffe := ca.issue(leaf{cn: "ignored-cn", uri: "spiffe://example.org/video-svc"})
	cnOnly := ca.issue(leaf{cn: "batch-job"})
	data := media("image/png", 5000, 1)
	start := &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: int64(len(data))}

	if _, err := uploadVia(context.Background(), e.dial(clientTLS(ca, spiffe.pair)), start, data, fixed(1000)); err != nil {
		t.Fatalf("gRPC upload with a SPIFFE certificate: %v", err)
	}
	if _, err := uploadVia(context.Background(), e.dial(clientTLS(ca, cnOnly.pair)), start, data, fixed(1000)); err != nil {
		t.Fatalf("gRPC upload with a CN-only certificate: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=image/png", bytes.NewReader(data))
	resp, err := httpsClient(clientTLS(ca, spiffe.pair)).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ := readProblem(t, resp); code != http.StatusOK {
		t.Fatalf("REST upload with a client certificate: HTTP %d %v", code, body)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("REST answered without TLS 1.2+: %+v", resp.TLS)
	}
	var callers []string
	for _, l := range e.uploadLogs() {
		callers = append(callers, l["caller"].(string)+"/"+l["outcome"].(string))
	}
	want := "spiffe://example.org/video-svc/OK batch-job/OK spiffe://example.org/video-svc/OK"
	if got := strings.Join(callers, " "); got != want {
		t.Fatalf("upload log callers %q, want %q", got, want)
	}
}

// TestMTLSRefusals: every client without a certificate of the client CA
// is refused in the handshake, over gRPC and REST, and X sees nothing.
func TestMTLSRefusals(t *testing.T) {
	t.Parallel()
	e, ca, _ := mtlsEnv(t)
	foreign := newTestCA(t, "foreign").issue(leaf{uri: "spiffe://example.org/video-svc"})
	expired := ca.issue(leaf{uri: "spiffe://example.org/video-svc", notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
	data := media("image/png", 5000, 1)
	start := &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: int64(len(data))}
	// The client's view of a refused handshake depends on timing (under
	// TLS 1.3 it may write before it reads the server's alert); the
	// server's log line says why.
	cases := []struct {
		name string
		cfg  *tls.Config
		want string // in the server's log of the REST handshake
	}{
		{"no certificate", clientTLS(ca), "client didn't provide a certificate"},
		{"foreign CA", insist(clientTLS(ca), foreign.pair), "certificate signed by unknown authority"},
		{"expired", clientTLS(ca, expired.pair), "certificate has expired"},
		{"TLS 1.1", &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, "unsupported versions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := uploadVia(ctx, e.dial(tc.cfg), start, data, fixed(1000))
			if codeOf(err) != "Unavailable" {
				t.Errorf("gRPC: %v, want Unavailable", err)
			}
			req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=image/png", bytes.NewReader(data))
			resp, err := httpsClient(tc.cfg).Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("REST: HTTP %d, want the handshake refused", resp.StatusCode)
			}
			waitLog(t, e, tc.want)
		})
	}
	// A plaintext client on the TLS port.
	conn, err := grpc.NewClient(e.app.grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := mediagwv1.NewMediaUploadServiceClient(conn).GetStatus(ctx, &mediagwv1.GetStatusRequest{MediaId: "1"}); codeOf(err) != "Unavailable" {
		t.Errorf("plaintext gRPC: %v, want Unavailable", err)
	}
	if n := e.xCalls(); n != 0 {
		t.Fatalf("X received %d requests from refused callers", n)
	}
	// The gRPC listener's refused handshakes are logged (with the peer)
	// and counted, as refused calls are.
	waitLog(t, e, `"method":"TLS handshake"`)
	waitFor(t, func() bool {
		v, _ := metricValue(scrape(t, e), "mediagw_auth_refused_total", `upload_transport="grpc"`, `reason="CLIENT_CERTIFICATE"`)
		return v >= float64(len(cases))
	})
}

// TestMTLSHealth: the gRPC health service needs a client certificate too.
func TestMTLSHealth(t *testing.T) {
	t.Parallel()
	e, ca, _ := mtlsEnv(t)
	good := ca.issue(leaf{cn: "prober"})
	check := func(cfg *tls.Config) error {
		conn, err := grpc.NewClient(e.app.grpcLis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := check(clientTLS(ca, good.pair)); err != nil {
		t.Fatalf("health with a certificate: %v", err)
	}
	if err := check(clientTLS(ca)); codeOf(err) != "Unavailable" {
		t.Fatalf("health without a certificate: %v, want Unavailable", err)
	}
}

// TestTLSReload: a certificate written over the served one is served to
// new connections without a restart; a broken one is not.
func TestTLSReload(t *testing.T) {
	t.Parallel()
	e, ca, srv := mtlsEnv(t)
	client := ca.issue(leaf{cn: "c"})
	served := func() string {
		conn, err := tls.Dial("tcp", e.app.httpLis.Addr().String(), clientTLS(ca, client.pair))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.Handshake(); err != nil {
			t.Fatal(err)
		}
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "mediagw" {
		t.Fatalf("serving %q", got)
	}
	next := ca.issue(leaf{cn: "mediagw-rotated", server: true})
	copyFile(t, next.certFile, srv.certFile)
	copyFile(t, next.keyFile, srv.keyFile)
	eventually(t, 10*time.Second, "the rotated certificate served", func() bool { return served() == "mediagw-rotated" })
	// A certificate that does not match its key is refused; the last good
	// one stays.
	other := ca.issue(leaf{cn: "mismatched", server: true})
	copyFile(t, other.certFile, srv.certFile)
	e.app.tls.Reload()
	if got := served(); got != "mediagw-rotated" {
		t.Fatalf("after a broken reload: serving %q", got)
	}
	if !strings.Contains(e.logs.String(), "TLS files not reloaded") {
		t.Fatal("the failed reload was not logged")
	}
}

// insist makes cfg present pair even to a server that asks for
// certificates of other CAs (Go's client would otherwise send none).
func insist(cfg *tls.Config, pair tls.Certificate) *tls.Config {
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	return cfg
}

// waitLog waits up to 5s for text in e's logs.
func waitLog(t *testing.T, e *env, text string) {
	t.Helper()
	e.logs.await(t, 5*time.Second, text)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMTLSAndJWT: with both mechanisms configured, a call needs both; the
// caller is the token's subject. The health service needs the certificate
// but no token.
func TestMTLSAndJWT(t *testing.T) {
	t.Parallel()
	k := ecKey(t, "k")
	e, ca, _ := mtlsEnv(t, jwtFlags(writeFile(t, "jwks.json", jwks(t, k)))...)
	cert := ca.issue(leaf{uri: "spiffe://example.org/sidecar"})
	client := e.dial(clientTLS(ca, cert.pair))
	data := media("image/png", 3000, 5)
	start := &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: int64(len(data))}
	if _, err := uploadVia(context.Background(), client, start, data, fixed(1000)); codeOf(err) != "Unauthenticated" {
		t.Fatalf("certificate without a token: %v", err)
	}
	https := httpsClient(clientTLS(ca, cert.pair))
	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=image/png", bytes.NewReader(data))
	resp, err := https.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, h := readProblem(t, resp); code != http.StatusUnauthorized || h.Get("WWW-Authenticate") != `Bearer realm="mediagw"` {
		t.Fatalf("REST certificate without a token: HTTP %d, WWW-Authenticate %q", code, h.Get("WWW-Authenticate"))
	}
	tok := k.sign(t, claims("system:serviceaccount:media:uploader"))
	if _, err := uploadVia(withBearer(context.Background(), tok), client, start, data, fixed(1000)); err != nil {
		t.Fatalf("certificate and token: %v", err)
	}
	if _, err := uploadVia(withBearer(context.Background(), tok), e.dial(clientTLS(ca)), start, data, fixed(1000)); codeOf(err) != "Unavailable" {
		t.Fatalf("token without a certificate: %v", err)
	}
	logs := e.uploadLogs()
	// Refused calls never reach the upload core: one upload line.
	if len(logs) != 1 || logs[0]["caller"] != "system:serviceaccount:media:uploader" || logs[0]["outcome"] != "OK" {
		t.Fatalf("upload logs %v", logs)
	}
	conn, err := grpc.NewClient(e.app.grpcLis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(ca, cert.pair))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health with a certificate and no token: %v", err)
	}
}
