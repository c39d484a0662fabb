package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/service/redisstore/redistest"
	"github.com/mediagw/mediagw/service/tokens"
	"github.com/mediagw/mediagw/service/tokens/boltstore"
	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
)

func keyFile(t *testing.T, b byte) string {
	t.Helper()
	return writeFile(t, fmt.Sprintf("key-%d", b), bytes.Repeat([]byte{b}, 32))
}

// Without a key, OAuth 2.0 tokens stay in memory and the log names the
// flag; a stored token that does not open with the key fails startup
// naming the key file.
func TestSecretsKeyFile(t *testing.T) {
	t.Parallel()
	err, logs := tryApp(t, "--x-client-id=cid", "--x-refresh-token=rt0", "--ledger="+filepath.Join(t.TempDir(), "l.db"))
	if err != nil || !strings.Contains(logs, "set --secrets-key-file") {
		t.Fatalf("without a key: %v\n%s", err, logs)
	}
	noRT := writeFile(t, "accounts.yaml", []byte("accounts:\n  brand:\n    oauth2: {client_id: cid}\n"))
	if err, _ := tryApp(t, "--accounts="+noRT, "--ledger="+filepath.Join(t.TempDir(), "l.db")); err == nil ||
		!strings.Contains(err.Error(), "--secrets-key-file") || !strings.Contains(err.Error(), "brand") {
		t.Fatalf("an OAuth 2.0 account with no refresh token and no store: %v", err)
	}
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	right, wrong := keyFile(t, 1), keyFile(t, 2)
	k, err := tokens.LoadKeyFile(right)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(ledger, 0o600, nil) // the ledger's file, as mediagw keeps them
	if err != nil {
		t.Fatal(err)
	}
	s, err := boltstore.New(db, "oauth2-tokens", tokens.NewKeyring(k))
	if err != nil {
		t.Fatal(err)
	}
	held, release, err := s.Lock(context.Background(), "default", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompareAndSwap(held, "default", 0, &oauth2.Token{RefreshToken: "stored-rt"}); err != nil {
		t.Fatal(err)
	}
	release()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--x-client-id=cid", "--x-refresh-token=rt0", "--ledger=" + ledger}
	if err, _ := tryApp(t, append(flags, "--secrets-key-file="+wrong)...); err == nil || !strings.Contains(err.Error(), wrong) {
		t.Fatalf("a wrong key: %v, want an error naming %s", err, wrong)
	}
	if err, logs := tryApp(t, append(flags, "--secrets-key-file="+right)...); err != nil || !strings.Contains(logs, "OAuth 2.0 tokens stored sealed") {
		t.Fatalf("the right key: %v\n%s", err, logs)
	}
	// Rotation: the new key with the old one read-only opens the store.
	if err, _ := tryApp(t, append(flags, "--secrets-key-file="+wrong, "--secrets-old-key-files="+right)...); err != nil {
		t.Fatalf("a rotated key with the old one given: %v", err)
	}
}

// adminCall sends method path to the admin port with an optional bearer.
func adminCall(t *testing.T, e *env, method, path, bearer string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, e.adminURL+path, bytes.NewReader(b))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// The accounts API: reads are open, writes need the admin token; a named
// account added to --accounts appears on SIGHUP's reload.
func TestAdminAccountsAPI(t *testing.T) {
	t.Parallel()
	accounts := writeFile(t, "accounts.yaml", []byte("accounts:\n  ops:\n    token: ops-token\n"))
	admin := writeFile(t, "admin.token", []byte("admin-secret-0123456789\n"))
	e := newEnv(t, xfake.Options{ClientID: "cid", ClientSecret: "csec", RefreshTokens: []string{"rt-given"}},
		"--x-token=", "--x-client-id=cid", "--x-client-secret=csec", "--secrets-key-file="+keyFile(t, 3),
		"--admin-token-file="+admin, "--accounts="+accounts)
	code, m := adminCall(t, e, http.MethodGet, "/v1/accounts", "", nil)
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(m), "name:default") || !strings.Contains(fmt.Sprint(m), "name:ops") {
		t.Fatalf("GET /v1/accounts: %d %v", code, m)
	}
	if code, _ := adminCall(t, e, http.MethodPost, "/v1/accounts/default/token", "", map[string]string{"refresh_token": "x"}); code != http.StatusUnauthorized {
		t.Fatalf("install without the admin token: %d", code)
	}
	if code, _ := adminCall(t, e, http.MethodPost, "/v1/accounts/default/token", "wrong-0123456789", map[string]string{"refresh_token": "x"}); code != http.StatusUnauthorized {
		t.Fatalf("install with a wrong admin token: %d", code)
	}
	code, m = adminCall(t, e, http.MethodPost, "/v1/accounts/default/token", "admin-secret-0123456789", map[string]string{"refresh_token": "rt-given"})
	if code != http.StatusOK || m["state"] != "ok" {
		t.Fatalf("install a refresh token: %d %v", code, m)
	}
	data := media("image/png", 100<<10, 1)
	if _, err := e.upload(context.Background(), pngStart(data, ""), data, fixed(32<<10)); err != nil {
		t.Fatalf("upload with the installed refresh token: %v", err)
	}
	_, m = adminCall(t, e, http.MethodGet, "/v1/accounts/default", "", nil)
	if m["state"] != "ok" || !strings.Contains(fmt.Sprint(m["scopes"]), "media.write") || m["expiry"] == nil {
		t.Fatalf("GET /v1/accounts/default after an upload: %v", m)
	}
	for _, secret := range []string{"rt-given", "csec", "ops-token"} {
		raw, _ := json.Marshal(m)
		if strings.Contains(string(raw), secret) {
			t.Errorf("the account view shows %q", secret)
		}
	}
	// No token appears in mediagw's logs.
	stored, _, err := e.app.tokens.store.Load(context.Background(), defaultAccountName)
	if err != nil || stored == nil {
		t.Fatalf("stored token: %v", err)
	}
	for _, secret := range []string{"rt-given", stored.AccessToken, stored.RefreshToken, "csec"} {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("mediagw's log shows a secret (%d characters)", len(secret))
		}
	}
	// SIGHUP's reload picks up a new account.
	if err := os.WriteFile(accounts, []byte("accounts:\n  ops:\n    token: ops-token\n  more:\n    token: more-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.app.reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.app.accountSet.get("more"); !ok {
		t.Fatal("a new account is not there after reload")
	}
	if code, m := adminCall(t, e, http.MethodGet, "/v1/accounts/more", "", nil); code != http.StatusOK {
		t.Fatalf("GET /v1/accounts/more: %d %v", code, m)
	}
}

// Three replicas share the token store in one Redis: 50 uploads once the
// access token is expiring make one token call between them, and none
// fails, with X revoking the token family on a reused refresh token.
func TestReplicasShareOneRefresh(t *testing.T) {
	t.Parallel()
	url := redistest.URL(t)
	x := newEnv(t, xfake.Options{ClientID: "cid", ClientSecret: "csec", RefreshTokens: []string{"rt0"},
		RevokeFamilyOnReuse: true, AccessTokenTTL: 4 * time.Second}).x
	key := keyFile(t, 4)
	prefix := redistest.Prefix(t)
	var replicas []*env
	for range 3 {
		r := startApp(t, x.URL, nil, "--ledger="+url, "--secrets-key-file="+key, "--token-redis-prefix="+prefix,
			"--x-token=", "--x-client-id=cid", "--x-client-secret=csec", "--x-refresh-token=rt0")
		replicas = append(replicas, r)
	}
	up := func(i int) error {
		data := media("image/png", 40<<10+i, uint64(i+1))
		_, err := replicas[i%3].upload(context.Background(), pngStart(data, ""), data, fixed(16<<10))
		return err
	}
	if err := up(0); err != nil {
		t.Fatal(err)
	}
	tokenCalls := func() int64 { return x.X.Stats().Requests["token"] }
	if n := tokenCalls(); n != 1 {
		t.Fatalf("%d token calls for the first upload", n)
	}
	acc, _, _ := replicas[0].app.tokens.stored(defaultAccountName)
	eventually(t, 10*time.Second, "the 4 s token expiring", func() bool { return acc.Health().State == upstream.AccountExpiring })
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() { errs <- up(i + 1) })
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			t.Errorf("upload: %v", err)
		}
	}
	if n := tokenCalls(); n != 2 || failed != 0 {
		t.Fatalf("%d token calls (want 2), %d of 50 uploads failed", n, failed)
	}
	if r := x.X.Stats().RefreshReuses; r != 0 {
		t.Errorf("%d refresh tokens were reused", r)
	}
	t.Logf("3 replicas, 50 uploads across the expiry: %d token call for it, %d failed", tokenCalls()-1, failed)
}

// tokenGate stands before the emulator and holds the first token request
// (forwarding nothing of it), as a refresh that never finished; later ones
// pass.
type tokenGate struct {
	next    http.Handler
	held    chan struct{} // closed when the first token request arrived
	once    sync.Once
	release chan struct{}
}

func (g *tokenGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/2/oauth2/token" {
		first := false
		g.once.Do(func() { first = true; close(g.held) })
		if first {
			select {
			case <-g.release:
			case <-r.Context().Done():
			}
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

// kill -9 of the replica holding the refresh lease mid-refresh: another
// replica completes the refresh once the lease expires, with one token
// call at X.
func TestKilledLeaseHolder(t *testing.T) {
	t.Parallel()
	url := redistest.URL(t)
	x := newEnv(t, xfake.Options{ClientID: "cid", ClientSecret: "csec", RefreshTokens: []string{"rt0"}, RevokeFamilyOnReuse: true}).x
	gate := &tokenGate{next: x.X, held: make(chan struct{}), release: make(chan struct{})}
	ts := httptest.NewServer(gate)
	t.Cleanup(ts.Close)
	front := ts.URL
	defer close(gate.release)
	key := keyFile(t, 5)
	flags := []string{"--ledger=" + url, "--secrets-key-file=" + key, "--token-redis-prefix=" + redistest.Prefix(t),
		"--x-api-url=" + front, "--token-lease-ttl=2s", "--x-client-id=cid", "--x-client-secret=csec", "--x-refresh-token=rt0", "--segment-size=64KiB"}
	holder := startProc(t, flags...)
	holderDone := make(chan error, 1)
	go func() {
		data := media("image/png", 20<<10, 1)
		_, err := uploadVia(context.Background(), holder.client, pngStart(data, ""), data, fixed(8<<10))
		holderDone <- err
	}()
	select {
	case <-gate.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the first replica never asked for a token")
	}
	holder.kill()
	other := startApp(t, front, nil, append(flags, "--x-token=")...)
	began := time.Now()
	data := media("image/png", 30<<10, 2)
	if _, err := other.upload(context.Background(), pngStart(data, ""), data, fixed(8<<10)); err != nil {
		t.Fatalf("upload on the surviving replica: %v (token calls at X %d)", err, x.X.Stats().Requests["token"])
	}
	waited := time.Since(began)
	if n := x.X.Stats().Requests["token"]; n != 1 {
		t.Fatalf("%d token calls reached X, want 1", n)
	}
	if waited > 2*time.Second+10*time.Second {
		t.Errorf("the surviving replica's upload took %v with a 2 s lease", waited)
	}
	t.Logf("after kill -9 of the lease holder, the other replica's upload took %v (lease TTL 2s); token calls at X: 1", waited)
}

// waitExpiring waits until the default account's token is expiring.
func waitExpiring(t *testing.T, e *env) {
	t.Helper()
	acc, _, ok := e.app.tokens.stored(defaultAccountName)
	if !ok {
		t.Fatal("no stored default account")
	}
	eventually(t, 15*time.Second, "the token expiring", func() bool { return acc.Health().State == upstream.AccountExpiring })
}

// A restart with the original configuration after two rotations: uploads
// go on with the stored pair, one token call per rotation.
func TestRestartAfterTwoRotations(t *testing.T) {
	t.Parallel()
	x := newEnv(t, xfake.Options{ClientID: "cid", ClientSecret: "csec", RefreshTokens: []string{"rt0"},
		RevokeFamilyOnReuse: true, AccessTokenTTL: 4 * time.Second}).x
	flags := []string{"--ledger=" + filepath.Join(t.TempDir(), "ledger.db"), "--secrets-key-file=" + keyFile(t, 6),
		"--x-token=", "--x-client-id=cid", "--x-client-secret=csec", "--x-refresh-token=rt0"}
	calls := func() int64 { return x.X.Stats().Requests["token"] }
	n := uint64(0)
	up := func(e *env) {
		t.Helper()
		n++
		data := media("image/png", 20<<10, n)
		if _, err := e.upload(context.Background(), pngStart(data, ""), data, fixed(8<<10)); err != nil {
			t.Fatalf("upload %d: %v (token calls %d)", n, err, calls())
		}
	}
	e := startApp(t, x.URL, nil, flags...)
	up(e) // the first token: rt0 is spent
	waitExpiring(t, e)
	up(e) // first rotation
	waitExpiring(t, e)
	up(e) // second rotation
	if c := calls(); c != 3 {
		t.Fatalf("%d token calls before the restart, want 3", c)
	}
	e.stop()
	e = startApp(t, x.URL, nil, flags...) // the same flags: --x-refresh-token rt0, spent
	up(e)
	waitExpiring(t, e)
	up(e)
	if c := calls(); c != 4 {
		t.Fatalf("%d token calls after the restart and one more rotation, want 4", c)
	}
	if r := x.X.Stats().RefreshReuses; r != 0 {
		t.Errorf("%d spent refresh tokens were presented again", r)
	}
}

// With --admin-tls and --tls-client-ca, a client certificate authorizes
// the mutating admin endpoints; reads need none, and without a
// certificate or admin token a write is refused.
func TestAdminMTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "mediagw-admin-test")
	srv := ca.issue(leaf{cn: "mediagw", server: true})
	operator := ca.issue(leaf{cn: "operator"})
	e := newEnv(t, xfake.Options{ClientID: "cid", ClientSecret: "csec", RefreshTokens: []string{"rt-given"}},
		"--tls-cert="+srv.certFile, "--tls-key="+srv.keyFile, "--tls-client-ca="+ca.file, "--admin-tls",
		"--x-token=", "--x-client-id=cid", "--x-client-secret=csec", "--secrets-key-file="+keyFile(t, 7))
	base := "https://" + e.app.adminLis.Addr().String()
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.pool, Certificates: certs}}}
	}
	post := func(hc *http.Client) int {
		resp, err := hc.Post(base+"/v1/accounts/default/token", "application/json", strings.NewReader(`{"refresh_token":"rt-given"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	resp, err := client().Get(base + "/v1/accounts")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/accounts without a client certificate: %d", resp.StatusCode)
	}
	if code := post(client()); code != http.StatusForbidden {
		t.Fatalf("install without a certificate or admin token: %d, want 403", code)
	}
	if code := post(client(operator.pair)); code != http.StatusOK {
		t.Fatalf("install with a client certificate: %d", code)
	}
	acc, _, _ := e.app.tokens.stored(defaultAccountName)
	if _, _, err := e.app.tokens.store.Load(context.Background(), defaultAccountName); err != nil || acc.Health().State != upstream.AccountOK {
		t.Fatalf("after the install: %v %+v", err, acc.Health())
	}
}
