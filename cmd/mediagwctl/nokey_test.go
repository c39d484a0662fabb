package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// TestEmptyKeySendsNone: --idempotency-key ” sends no key, so a file
// uploads to a mediagw that keeps no ledger (which refuses keyed
// uploads).
func TestEmptyKeySendsNone(t *testing.T) {
	t.Parallel()
	st := newStack(t, xfake.Options{}, "--ledger=off")
	path, _ := writeMedia(t, "clip.mp4", mp4Magic, 300<<10, 31)
	code, _, stderr := ctl(t, nil, "upload", path, "--server", st.grpcAddr, "--retries", "0")
	if code != exitFailed {
		t.Fatalf("a derived key against --ledger off: exit %d, want %d; stderr:\n%s", code, exitFailed, stderr)
	}
	for _, flags := range [][]string{{"--server", st.grpcAddr}, {"--rest", "--rest-url", "http://" + st.httpAddr}} {
		code, stdout, stderr := ctl(t, nil, append([]string{"upload", path, "--json", "--idempotency-key", ""}, flags...)...)
		if code != exitOK {
			t.Fatalf("%v: exit %d; stderr:\n%s", flags, code, stderr)
		}
		if r := jsonResults(t, stdout); len(r) != 1 || r[0].MediaID == "" || r[0].IdempotencyKey != "" {
			t.Fatalf("%v: results %+v", flags, r)
		}
	}
}

// TestMissingClientCertificateEndsAtOnce: under mTLS, mediagwctl without
// its client certificate fails at once with the cause instead of backing
// off.
func TestMissingClientCertificateEndsAtOnce(t *testing.T) {
	t.Parallel()
	ca, cert, key := writeServerPKI(t)
	st := newStack(t, xfake.Options{}, "--tls-cert="+cert, "--tls-key="+key, "--tls-client-ca="+ca)
	path, _ := writeMedia(t, "clip.mp4", mp4Magic, 64<<10, 32)
	start := time.Now()
	code, _, stderr := ctl(t, nil, "upload", path, "--server", st.grpcAddr, "--cacert", ca)
	took := time.Since(start)
	if code != exitFailed || !strings.Contains(stderr, "certificate") || strings.Contains(stderr, "retry") {
		t.Fatalf("exit %d after %v; stderr:\n%s", code, took, stderr)
	}
	if took > 10*time.Second {
		t.Fatalf("took %v; stderr:\n%s", took, stderr)
	}
	t.Logf("%v: %s", took, strings.TrimSpace(stderr))
}

// writeServerPKI writes a CA and mediagw's certificate for 127.0.0.1.
func writeServerPKI(t *testing.T) (ca, cert, key string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: "mediagw"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", kb)
}
