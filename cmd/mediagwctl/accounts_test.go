package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// accountsStack is the mediagw binary with stored OAuth 2.0 tokens as its
// default account, in front of an emulator with an app (cid/csec).
type accountsStack struct {
	x          *xfaketest.Server
	grpcAddr   string
	adminURL   string
	tokenFile  string
	ledgerPath string
}

func newAccountsStack(t *testing.T, extra ...string) *accountsStack {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the mediagw binary")
	}
	bin := buildMediagw(t)
	x := xfaketest.New(t, xfake.Options{ClientID: "cid", ClientSecret: "csec", RevokeFamilyOnReuse: true,
		Tokens: []string{"static-unused"}, ProcessingTime: time.Second, Seed: 1})
	dir := t.TempDir()
	key, tokenFile := filepath.Join(dir, "secrets.key"), filepath.Join(dir, "admin.token")
	if err := os.WriteFile(key, bytes.Repeat([]byte{0x5a}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte("admin-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := &accountsStack{x: x, tokenFile: tokenFile, ledgerPath: filepath.Join(dir, "ledger.db")}
	var admin string
	st.grpcAddr, _, admin = runMediagw(t, bin, []string{"MEDIAGW_X_CLIENT_SECRET=csec"}, append([]string{
		"--x-api-url=" + x.URL, "--x-client-id=cid", "--secrets-key-file=" + key, "--admin-token-file=" + tokenFile,
		"--segment-size=1MiB", "--ledger=" + st.ledgerPath}, extra...)...)
	st.adminURL = "http://" + admin
	return st
}

func (s *accountsStack) tokenCalls() int64 { return s.x.X.Stats().Requests["token"] }

// login runs mediagwctl accounts login, plays the user at the printed URL
// (the emulator's test user approves at once) and returns the exit code.
func (s *accountsStack) login(t *testing.T, name string) (int, string) {
	t.Helper()
	pr, pw := io.Pipe()
	var stdout bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"accounts", "login", name, "--admin-url", s.adminURL, "--admin-token-file", s.tokenFile,
			"--no-browser", "--timeout", "30s"}, func(string) string { return "" }, &stdout, pw)
		_ = pw.Close()
		done <- code
	}()
	var printed strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		printed.WriteString(line + "\n")
		if u, ok := strings.CutPrefix(line, "  "); ok && strings.Contains(u, "/i/oauth2/authorize?") {
			if !strings.HasPrefix(u, s.x.URL+"/") {
				t.Fatalf("the authorize URL %q is not the emulator's", u) // never leave loopback
			}
			// Following the redirect delivers the code to mediagwctl's
			// loopback listener.
			resp, err := http.Get(u)
			if err != nil {
				t.Fatalf("visiting the authorize URL: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("the callback answered %d", resp.StatusCode)
			}
		}
	}
	return <-done, printed.String() + stdout.String()
}

func (s *accountsStack) status(t *testing.T, name string) map[string]any {
	t.Helper()
	code, stdout, stderr := ctl(t, nil, "accounts", "status", name, "--admin-url", s.adminURL)
	if code != exitOK {
		t.Fatalf("accounts status: exit %d, %s", code, stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("accounts status printed %q", stdout)
	}
	return m
}

// From scratch: an account without tokens is refused naming the remedy;
// accounts login authorizes it against the emulator and uploads work; a
// revoked authorization makes it reauth_required (uploads fail before
// INIT) until another login, all without restarting mediagw.
func TestAccountsLoginEndToEnd(t *testing.T) {
	t.Parallel()
	st := newAccountsStack(t)
	seed := uint64(0)
	upload := func() (int, string) {
		// A new file each time: the same file would be answered from
		// mediagw's ledger without reaching X.
		seed++
		path, _ := writeMedia(t, fmt.Sprintf("pic%d.png", seed), "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 64<<10, seed)
		code, _, stderr := ctl(t, nil, "upload", path, "--json", "--server", st.grpcAddr, "--retries", "0")
		return code, stderr
	}
	code, stderr := upload()
	if code != exitFailed || !strings.Contains(stderr, "mediagwctl accounts login default") || !strings.Contains(stderr, "FailedPrecondition") {
		t.Fatalf("upload before login: exit %d, %q", code, stderr)
	}
	if n := st.x.X.Stats().Requests["init"]; n != 0 {
		t.Fatalf("%d INITs before login", n)
	}

	// The mutating admin call needs the admin token.
	code, _, stderr = ctl(t, nil, "accounts", "logout", "default", "--admin-url", st.adminURL,
		"--admin-token-file", writeTemp(t, "wrong-token-0123456789"))
	if code != exitFailed || !strings.Contains(stderr, "admin bearer token") {
		t.Fatalf("logout with a wrong admin token: exit %d, %q", code, stderr)
	}

	if s := st.status(t, "default"); s["state"] != "reauth_required" {
		t.Fatalf("status before login: %v", s)
	}
	if code, out := st.login(t, "default"); code != exitOK {
		t.Fatalf("accounts login: exit %d\n%s", code, out)
	}
	if s := st.status(t, "default"); s["state"] != "ok" {
		t.Fatalf("status right after login: %v", s)
	}
	if code, stderr := upload(); code != exitOK {
		t.Fatalf("upload after login: exit %d, %q", code, stderr)
	}
	if s := st.status(t, "default"); s["state"] != "ok" || !strings.Contains(fmt.Sprint(s["scopes"]), "media.write") {
		t.Fatalf("status after login: %v", s)
	}
	calls := st.tokenCalls()

	// The user revokes the app's access in X: the access token is 401, the
	// refresh token refused.
	st.x.X.RevokeAuthorizations()
	code, stderr = upload()
	if code != exitFailed || !strings.Contains(stderr, "must be authorized again") || strings.Contains(stderr, st.x.URL) {
		t.Fatalf("upload after revocation: exit %d, %q", code, stderr)
	}
	t.Logf("upload after revocation: %s", strings.TrimSpace(stderr))
	if s := st.status(t, "default"); s["state"] != "reauth_required" {
		t.Fatalf("status after revocation: %v", s)
	}
	inits := st.x.X.Stats().Requests["init"]
	if code, stderr := upload(); code != exitFailed || !strings.Contains(stderr, "mediagwctl accounts login default") {
		t.Fatalf("second upload after revocation: exit %d, %q", code, stderr)
	}
	if n := st.x.X.Stats().Requests["init"]; n != inits {
		t.Errorf("a reauth_required upload sent INIT (%d, then %d)", inits, n)
	}

	if code, out := st.login(t, "default"); code != exitOK {
		t.Fatalf("second login: exit %d\n%s", code, out)
	}
	if code, stderr := upload(); code != exitOK {
		t.Fatalf("upload after the second login: exit %d, %q", code, stderr)
	}
	code, stdout, stderr := ctl(t, nil, "accounts", "list", "--admin-url", st.adminURL)
	if code != exitOK || !strings.Contains(stdout, "default") || !strings.Contains(stdout, " ok ") {
		t.Fatalf("accounts list: exit %d, %q %q", code, stdout, stderr)
	}
	t.Logf("token calls: %d up to the first login's upload, %d in all\n%s", calls, st.tokenCalls(), stdout)

	// The ledger's file holds the sealed store: no token in clear.
	raw, err := os.ReadFile(st.ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("mgtok1:")) || bytes.Contains(raw, []byte("media.write")) {
		t.Errorf("the token store in %s is not sealed as expected", st.ledgerPath)
	}

	if code, _, stderr := ctl(t, nil, "accounts", "logout", "default", "--admin-url", st.adminURL, "--admin-token-file", st.tokenFile); code != exitOK {
		t.Fatalf("logout: exit %d %q", code, stderr)
	}
	if code, stderr := upload(); code != exitFailed || !strings.Contains(stderr, "mediagwctl accounts login default") {
		t.Fatalf("upload after logout: exit %d, %q", code, stderr)
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pemFile writes one PEM block.
func pemFile(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testPKI makes a CA, a server certificate for 127.0.0.1 and a client
// certificate; it returns their files.
func testPKI(t *testing.T) (caFile, srvCert, srvKey, cliCert, cliKey string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "admin-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(n int64, name string, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: ips,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalECPrivateKey(k)
		return pemFile(t, name+".crt", "CERTIFICATE", der), pemFile(t, name+".key", "EC PRIVATE KEY", kd)
	}
	srvCert, srvKey = leaf(2, "mediagw", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	cliCert, cliKey = leaf(3, "operator", x509.ExtKeyUsageClientAuth, nil)
	return pemFile(t, "ca.crt", "CERTIFICATE", caDER), srvCert, srvKey, cliCert, cliKey
}

// With mediagw --admin-tls, a client certificate authorizes logout
// without the admin token; without either, mediagwctl refuses to call.
func TestAccountsAdminClientCertificate(t *testing.T) {
	t.Parallel()
	ca, srvCert, srvKey, cliCert, cliKey := testPKI(t)
	st := newAccountsStack(t, "--tls-cert="+srvCert, "--tls-key="+srvKey, "--tls-client-ca="+ca, "--admin-tls")
	admin := strings.Replace(st.adminURL, "http://", "https://", 1)
	code, stdout, stderr := ctl(t, nil, "accounts", "status", "default", "--admin-url", admin, "--cacert", ca)
	if code != exitOK || !strings.Contains(stdout, `"state":"reauth_required"`) {
		t.Fatalf("status over TLS without a client certificate: exit %d %q %q", code, stdout, stderr)
	}
	if code, _, stderr := ctl(t, nil, "accounts", "logout", "default", "--admin-url", admin, "--cacert", ca); code != exitUsage ||
		!strings.Contains(stderr, "--admin-token-file") {
		t.Fatalf("logout with neither a token nor a certificate: exit %d %q", code, stderr)
	}
	env := map[string]string{"MEDIAGWCTL_CACERT": ca, "MEDIAGWCTL_CERT": cliCert, "MEDIAGWCTL_KEY": cliKey}
	if code, stdout, stderr := ctl(t, env, "accounts", "logout", "default", "--admin-url", admin); code != exitOK {
		t.Fatalf("logout with a client certificate: exit %d %q %q", code, stdout, stderr)
	}
}
