package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/client"
)

// pki is a CA with a server certificate for 127.0.0.1 and a client
// certificate.
type pki struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newPKI(t *testing.T) *pki {
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
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, leaf *x509.Certificate) ([]byte, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		leaf.SerialNumber, leaf.NotBefore, leaf.NotAfter = big.NewInt(serial), time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p := &pki{caFile: write("ca.pem", "CERTIFICATE", caDER), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	srvDER, srvKey := issue(2, &x509.Certificate{Subject: pkix.Name{CommonName: "mediagw"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	p.certFile = write("server.pem", "CERTIFICATE", srvDER)
	kb, _ := x509.MarshalECPrivateKey(srvKey)
	p.keyFile = write("server.key", "EC PRIVATE KEY", kb)
	spiffe, _ := url.Parse("spiffe://test/uploader")
	cliDER, cliKey := issue(3, &x509.Certificate{Subject: pkix.Name{CommonName: "uploader"}, URIs: []*url.URL{spiffe},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	p.client = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	return p
}

// TestTLSRefusalsAreNotRetried: under mTLS, a client without a
// certificate, one that does not know the server's CA, and one that
// expects another server name end after one attempt with Reason
// TLS_HANDSHAKE; with its certificate the upload succeeds.
func TestTLSRefusalsAreNotRetried(t *testing.T) {
	pk := newPKI(t)
	st := newStack(t, nil, "--tls-cert="+pk.certFile, "--tls-key="+pk.keyFile, "--tls-client-ca="+pk.caFile)
	data := mp4(64<<10, 11)
	path := writeFile(t, data)
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		rest bool
		ok   bool
	}{
		{"client certificate", &tls.Config{RootCAs: pk.pool, Certificates: []tls.Certificate{pk.client}}, false, true},
		{"client certificate, REST", &tls.Config{RootCAs: pk.pool, Certificates: []tls.Certificate{pk.client}}, true, true},
		{"no client certificate", &tls.Config{RootCAs: pk.pool}, false, false},
		{"no client certificate, REST", &tls.Config{RootCAs: pk.pool}, true, false},
		{"unknown authority", &tls.Config{Certificates: []tls.Certificate{pk.client}}, false, false},
		{"unknown authority, REST", &tls.Config{Certificates: []tls.Certificate{pk.client}}, true, false},
		{"wrong server name", &tls.Config{RootCAs: pk.pool, ServerName: "other.example", Certificates: []tls.Certificate{pk.client}}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []client.Option{client.WithTLS(tc.cfg)}
			target := st.m.grpcAddr
			if tc.rest {
				opts = append(opts, client.WithREST("https://"+st.m.httpAddr))
			}
			c, err := client.New(target, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			res, err := c.Upload(context.Background(), client.File(path), client.UploadOptions{})
			took := time.Since(start)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if n, sha := xMedia(t, st.x, res.MediaID); n != int64(len(data)) || sha != sum(data) {
					t.Fatalf("X holds %d bytes, sha256 %s", n, sha)
				}
				return
			}
			var e *client.Error
			if !errors.As(err, &e) || e.Reason != client.ReasonTLSHandshake || client.IsRetryable(err) || e.Attempts > 1 {
				t.Fatalf("err %v (%+v), want a TLS_HANDSHAKE refusal after one attempt", err, e)
			}
			if took > 5*time.Second {
				t.Fatalf("the refusal took %v", took)
			}
			t.Logf("%v after %v", err, took)
		})
	}
}
