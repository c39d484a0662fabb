package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// The tests' callers file: alice may use brand (her default) and the
// default account, with files up to 1 MiB; bob (named bob-svc) uses news
// or his own X token; dave one upload at a time; erin 3 MiB an hour;
// frank has no account, only his own token; gina uses an OAuth 2.0 account
// that is refreshed and an OAuth 1.0a one. Nobody else is allowed.
const testCallers = `
callers:
  alice:
    accounts: [brand, default]
    max_file_bytes: 1MiB
  bob:
    name: bob-svc
    accounts: [news]
    user_tokens: true
  dave:
    accounts: [default]
    max_concurrent_uploads: 1
  erin:
    accounts: [default]
    bytes_per_hour: 3MiB
  frank:
    user_tokens: true
  gina:
    accounts: [refreshed, legacy]
`

// policyEnv is mediagw with bearer tokens, two named accounts (brand and
// news, with their own X tokens) and a callers file, in front of an
// emulator whose requests are recorded by Authorization.
type policyEnv struct {
	*env
	rec     *authRecorder
	key     signingKey
	callers string
	flags   []string // mediagw's, to start another on the same files
}

func newPolicyEnv(t *testing.T, callers string) *policyEnv {
	t.Helper()
	x := xfake.New(xfake.Options{Tokens: []string{testToken, "brand-token", "news-token", "bob-own-token"},
		ClientID: "gina-app", ClientSecret: "gina-client-secret", RefreshTokens: []string{"gina-refresh-token"},
		ProcessingTime: 1500 * time.Millisecond, Seed: 1})
	rec := &authRecorder{next: x}
	ts := httptest.NewServer(rec)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = x.Close() })
	newsToken := writeFile(t, "news-token", []byte("news-token\n"))
	accounts := writeFile(t, "accounts.yaml", []byte("accounts:\n  brand:\n    token: brand-token\n  news:\n    token: {file: "+newsToken+"}\n"+
		"  refreshed:\n    oauth2: {client_id: gina-app, client_secret: gina-client-secret, refresh_token: gina-refresh-token}\n"+
		"  legacy:\n    oauth1: {consumer_key: ck, consumer_secret: cs-secret, token: at, token_secret: ts-secret}\n"))
	p := &policyEnv{rec: rec, key: ecKey(t, "k"), callers: writeFile(t, "callers.yaml", []byte(callers))}
	p.flags = append(jwtFlags(writeFile(t, "jwks.json", jwks(t, p.key))), "--accounts="+accounts, "--callers="+p.callers,
		"--ledger="+filepath.Join(t.TempDir(), "ledger.db"))
	p.env = startApp(t, ts.URL, nil, p.flags...)
	p.x = &xfaketest.Server{URL: ts.URL, X: x, HTTP: ts}
	return p
}

// as is a context that calls as sub.
func (p *policyEnv) as(sub string) context.Context {
	return withBearer(context.Background(), p.key.sign(p.t, claims(sub)))
}

// rest sends a REST request as sub, with an X token unless empty.
func (p *policyEnv) rest(sub, method, path, xToken string, body []byte) (int, map[string]any, http.Header) {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.httpURL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.key.sign(p.t, claims(sub)))
	if xToken != "" {
		req.Header.Set("X-Access-Token", xToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	return readProblem(p.t, resp)
}

func pngStart(data []byte, account string) *mediagwv1.UploadStart {
	return &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: int64(len(data)), Account: account}
}

func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

func hasQuotaFailure(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if _, ok := d.(*errdetails.QuotaFailure); ok {
			return true
		}
	}
	return false
}

// TestCallerAccounts: each caller uses the accounts the callers file
// grants it, and only those; refusals reach nothing at X.
func TestCallerAccounts(t *testing.T) {
	t.Parallel()
	p := newPolicyEnv(t, testCallers)
	data := media("image/png", 4000, 7)
	up := func(sub, account, xToken string) error {
		ctx := p.as(sub)
		if xToken != "" {
			ctx = withToken(ctx, xToken)
		}
		_, err := p.upload(ctx, pngStart(data, account), data, fixed(1000))
		return err
	}
	// Granted: the account's own X credentials are what X sees.
	for _, c := range []struct{ sub, account, xToken, wantAuth string }{
		{"alice", "", "", "Bearer brand-token"}, // her default account
		{"alice", "default", "", "Bearer " + testToken},
		{"bob", "", "", "Bearer news-token"},
		{"bob", "", "bob-own-token", "Bearer bob-own-token"},
		{"frank", "", "bob-own-token", "Bearer bob-own-token"},
	} {
		before := p.rec.count(c.wantAuth)
		if err := up(c.sub, c.account, c.xToken); err != nil {
			t.Fatalf("%s account %q: %v", c.sub, c.account, err)
		}
		if p.rec.count(c.wantAuth) <= before {
			t.Fatalf("%s account %q: X saw no request with %q", c.sub, c.account, c.wantAuth)
		}
	}
	// OAuth 2.0 with refresh: the access token is fetched first.
	if err := up("gina", "", ""); err != nil {
		t.Fatalf("gina with the refreshed account: %v", err)
	}
	if n := p.x.X.Stats().Requests["token"]; n != 1 {
		t.Fatalf("the token endpoint saw %d requests, want 1", n)
	}
	if err := up("gina", "legacy", ""); err != nil {
		t.Fatalf("gina with the OAuth 1.0a account: %v", err)
	}
	if n := p.rec.prefixed(`OAuth oauth_consumer_key="ck"`); n == 0 {
		t.Fatal("X saw no OAuth 1.0a request of the legacy account")
	}
	logs := p.uploadLogs()
	var got []string
	for _, l := range logs {
		got = append(got, l["caller"].(string)+":"+l["account"].(string))
	}
	if want := "alice:brand alice:default bob:news bob:user-token frank:user-token gina:refreshed gina:legacy"; strings.Join(got, " ") != want {
		t.Fatalf("audit lines %q, want %q", strings.Join(got, " "), want)
	}

	// Refused: nothing reaches X.
	calls := p.xCalls()
	refusals := []struct {
		name, sub, account, xToken, code, msg string
		http                                  int
	}{
		{"an account not granted", "alice", "news", "", "PermissionDenied", `caller "alice" may not use X account "news"`, 403},
		{"an account that does not exist", "alice", "nope", "", "PermissionDenied", `may not use X account "nope"`, 403},
		{"an own token without user_tokens", "alice", "", "bob-own-token", "PermissionDenied", "may not pass its own X user token", 403},
		{"a caller not in the file", "carol", "", "", "PermissionDenied", `caller "carol" is not allowed by the callers policy`, 403},
		{"no default account", "frank", "", "", "PermissionDenied", "has no default X account", 403},
		{"an account and an own token", "bob", "news", "bob-own-token", "InvalidArgument", "exclude each other", 400},
	}
	for _, r := range refusals {
		err := up(r.sub, r.account, r.xToken)
		if codeOf(err) != r.code || !strings.Contains(status.Convert(err).Message(), r.msg) {
			t.Errorf("%s over gRPC: %v, want %s with %q", r.name, err, r.code, r.msg)
		}
		code, prob, _ := p.rest(r.sub, http.MethodPost, "/v1/media:upload?media_type=image/png&account="+r.account, r.xToken, data)
		if code != r.http || !strings.Contains(prob["detail"].(string), r.msg) {
			t.Errorf("%s over REST: HTTP %d %v, want %d", r.name, code, prob, r.http)
		}
	}
	if n := p.xCalls(); n != calls {
		t.Fatalf("refused uploads made %d requests to X", n-calls)
	}

	// Largest file: over the quota, and waiting would not help.
	big := media("video/mp4", 1<<20+1, 8)
	_, err := p.upload(p.as("alice"), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(big))}, big, fixed(64<<10))
	if codeOf(err) != "ResourceExhausted" || retryDelay(err) != 0 || !hasQuotaFailure(err) ||
		!strings.Contains(status.Convert(err).Message(), `more than caller "alice"'s largest file (1048576 bytes)`) {
		t.Fatalf("file over max_file_bytes: %v", err)
	}
	code, prob, h := p.rest("alice", http.MethodPost, "/v1/media:upload?media_type=video/mp4", "", big)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "" || prob["code"] != "RESOURCE_EXHAUSTED" {
		t.Fatalf("REST file over max_file_bytes: HTTP %d %v Retry-After %q", code, prob, h.Get("Retry-After"))
	}

	// The caller label is the file's name for each caller, bounded.
	text := scrape(t, p.env)
	for label, want := range map[string]float64{"alice": 2, "bob-svc": 2, "frank": 1} {
		if got, _ := metricValue(text, "mediagw_uploads_completed_total", `caller="`+label+`"`); got != want {
			t.Errorf("completed uploads of caller %q: %v, want %v", label, got, want)
		}
	}
	if strings.Contains(text, `caller="carol"`) || strings.Contains(text, `caller="bob"`) {
		t.Error("metrics carry a caller label that is not a name of the callers file")
	}
	// The accounts' secrets are in neither the logs nor the metrics.
	for _, secret := range []string{"brand-token", "news-token", "bob-own-token", "gina-client-secret", "gina-refresh-token", "cs-secret", "ts-secret"} {
		if strings.Contains(p.logs.String()+text, secret) {
			t.Errorf("secret %q appears in the logs or metrics", secret)
		}
	}
}

// TestCallerQuotas: concurrent uploads and bytes per hour, with
// RetryInfo / Retry-After; bytes of an upload refused before INIT are
// given back.
func TestCallerQuotas(t *testing.T) {
	t.Parallel()
	p := newPolicyEnv(t, testCallers)

	// dave: one upload at a time.
	data := media("video/mp4", 200<<10, 9)
	first := p.openUpload(p.as("dave"), data, 1000)
	eventually(t, 10*time.Second, "dave's first INIT answered", func() bool { return p.x.X.Stats().Requests["init"] > 0 })
	_, err := p.upload(p.as("dave"), pngStart(data[:3000], ""), media("image/png", 3000, 1), fixed(1000))
	if codeOf(err) != "ResourceExhausted" || retryDelay(err) != time.Second || !strings.Contains(status.Convert(err).Message(), "1 uploads in progress") {
		t.Fatalf("a second concurrent upload: %v (retry %v)", err, retryDelay(err))
	}
	code, _, h := p.rest("dave", http.MethodPost, "/v1/media:upload?media_type=image/png", "", media("image/png", 3000, 1))
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" {
		t.Fatalf("REST second concurrent upload: HTTP %d, Retry-After %q", code, h.Get("Retry-After"))
	}
	if err := first.Send(chunkMsg(data[1000:])); err != nil {
		t.Fatal(err)
	}
	if _, err := first.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.upload(p.as("dave"), pngStart(data[:3000], ""), media("image/png", 3000, 1), fixed(1000)); err != nil {
		t.Fatalf("after the first upload ended: %v", err)
	}

	// erin: 3 MiB an hour. A refused upload (PNG bytes declared as mp4)
	// gives its bytes back, so three 900 KiB uploads fit, a fourth not.
	const n = 900 << 10
	video := &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: n}
	if _, err := p.upload(p.as("erin"), video, media("image/png", n, 2), fixed(64<<10)); codeOf(err) != "InvalidArgument" {
		t.Fatalf("mismatched bytes: %v", err)
	}
	for i := range 3 {
		if _, err := p.upload(p.as("erin"), video, media("video/mp4", n, uint64(i)), fixed(64<<10)); err != nil {
			t.Fatalf("upload %d within the hourly quota: %v", i, err)
		}
	}
	calls := p.xCalls()
	_, err = p.upload(p.as("erin"), video, media("video/mp4", n, 5), fixed(64<<10))
	if d := retryDelay(err); codeOf(err) != "ResourceExhausted" || d < 58*time.Minute || d > time.Hour || !hasQuotaFailure(err) {
		t.Fatalf("over the hourly quota: %v (retry %v)", err, d)
	}
	code, prob, h := p.rest("erin", http.MethodPost, "/v1/media:upload?media_type=video/mp4", "", media("video/mp4", n, 5))
	if ra := h.Get("Retry-After"); code != http.StatusTooManyRequests || len(ra) != 4 || ra < "3480" || ra > "3600" {
		t.Fatalf("REST over the hourly quota: HTTP %d %v, Retry-After %q", code, prob, ra)
	}
	// A file larger than the whole hour's quota: no use waiting.
	_, err = p.upload(p.as("erin"), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: 4 << 20}, media("video/mp4", 4<<20, 6), fixed(64<<10))
	if codeOf(err) != "ResourceExhausted" || retryDelay(err) != 0 || !strings.Contains(status.Convert(err).Message(), "per hour") {
		t.Fatalf("a file over the hourly quota: %v", err)
	}
	if got := p.xCalls(); got != calls {
		t.Fatalf("uploads over quota made %d requests to X", got-calls)
	}
}

// TestCallerIsolation: a media id is visible only to the caller that
// uploaded it, and its status is asked with the account it used.
func TestCallerIsolation(t *testing.T) {
	t.Parallel()
	p := newPolicyEnv(t, testCallers)
	data := media("video/mp4", 100<<10, 10)
	resp, err := p.upload(p.as("alice"), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetMediaId()
	before := p.rec.count("Bearer brand-token")
	if _, err := p.client.GetStatus(p.as("alice"), &mediagwv1.GetStatusRequest{MediaId: id}); err != nil {
		t.Fatalf("the uploader's status: %v", err)
	}
	if p.rec.count("Bearer brand-token") != before+1 {
		t.Fatal("the status call did not use the account the media was uploaded with")
	}
	_, unknown := p.client.GetStatus(p.as("bob"), &mediagwv1.GetStatusRequest{MediaId: "424242"})
	for name, ctx := range map[string]context.Context{"bob": p.as("bob"), "bob with his own X token": withToken(p.as("bob"), "bob-own-token")} {
		_, err := p.client.GetStatus(ctx, &mediagwv1.GetStatusRequest{MediaId: id})
		if codeOf(err) != "NotFound" || strings.ReplaceAll(status.Convert(err).Message(), id, "424242") != status.Convert(unknown).Message() {
			t.Errorf("%s: GetStatus of alice's media: %v; want NotFound worded as for unknown media (%v)", name, err, unknown)
		}
		w, err := p.client.WatchStatus(ctx, &mediagwv1.WatchStatusRequest{MediaId: id})
		if err == nil {
			_, err = w.Recv()
		}
		if codeOf(err) != "NotFound" {
			t.Errorf("%s: WatchStatus of alice's media: %v", name, err)
		}
	}
	for _, path := range []string{"/v1/media/" + id + "/status", "/v1/media/" + id + "/status:watch"} {
		if code, prob, _ := p.rest("bob", http.MethodGet, path, "", nil); code != http.StatusNotFound {
			t.Errorf("REST %s as bob: HTTP %d %v", path, code, prob)
		}
	}
	if code, prob, _ := p.rest("alice", http.MethodGet, "/v1/media/"+id+"/status", "", nil); code != http.StatusOK || prob["media_id"] != id {
		t.Errorf("REST status as alice: HTTP %d %v", code, prob)
	}
	// Without a token of its own, a caller sees no media mediagw did not
	// upload for it.
	if code, _, _ := p.rest("alice", http.MethodGet, "/v1/media/424242/status", "", nil); code != http.StatusNotFound {
		t.Errorf("unknown media as alice: HTTP %d", code)
	}
}

// TestCallersReload: the callers file is read again on reload (SIGHUP);
// a broken file leaves the previous policy in place.
func TestCallersReload(t *testing.T) {
	t.Parallel()
	p := newPolicyEnv(t, testCallers)
	data := media("image/png", 3000, 11)
	up := func() error {
		_, err := p.upload(p.as("carol"), pngStart(data, ""), data, fixed(1000))
		return err
	}
	if err := up(); codeOf(err) != "PermissionDenied" {
		t.Fatalf("carol before: %v", err)
	}
	write := func(s string) {
		if err := os.WriteFile(p.callers, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(testCallers + "  carol:\n    accounts: [default]\n")
	if err := p.app.reload(); err != nil {
		t.Fatal(err)
	}
	if err := up(); err != nil {
		t.Fatalf("carol after the reload: %v", err)
	}
	write(testCallers + "  carol:\n    acounts: [default]\n")
	if err := p.app.reload(); err == nil || !strings.Contains(err.Error(), "acounts") {
		t.Fatalf("a misspelt key: %v", err)
	}
	if err := up(); err != nil {
		t.Fatalf("carol after a broken file: %v", err)
	}
	// SIGHUP, as an operator sends it.
	eventually(t, 10*time.Second, "mediagw ready (its SIGHUP handler installed)", p.app.ready.Load)
	write(testCallers)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "SIGHUP reloading the callers file", func() bool { return codeOf(up()) == "PermissionDenied" })
}

// TestCallerKeys: idempotency keys are the caller's own: another caller
// neither sees nor replays them, and its same key is an upload of its own.
// A replay after a restart makes the media the caller's again.
func TestCallerKeys(t *testing.T) {
	t.Parallel()
	p := newPolicyEnv(t, testCallers)
	data := media("video/mp4", 150<<10, 13)
	start := &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data)), IdempotencyKey: "order-1"}
	first, err := p.upload(p.as("alice"), start, data, fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := p.client.GetUpload(p.as("alice"), &mediagwv1.GetUploadRequest{IdempotencyKey: "order-1"}); err != nil ||
		st.GetPhase() != mediagwv1.UploadPhase_UPLOAD_PHASE_COMPLETED || st.GetMediaId() != first.GetMediaId() {
		t.Fatalf("alice's GetUpload: %v %v", st, err)
	}
	_, err = p.client.GetUpload(p.as("bob"), &mediagwv1.GetUploadRequest{IdempotencyKey: "order-1"})
	if codeOf(err) != "NotFound" {
		t.Fatalf("bob's GetUpload of alice's key: %v", err)
	}
	if code, prob, _ := p.rest("bob", http.MethodGet, "/v1/uploads/order-1", "", nil); code != http.StatusNotFound {
		t.Fatalf("REST GetUpload of alice's key as bob: HTTP %d %v", code, prob)
	}
	if code, prob, _ := p.rest("alice", http.MethodGet, "/v1/uploads/order-1", "", nil); code != http.StatusOK || prob["media_id"] != first.GetMediaId() {
		t.Fatalf("REST GetUpload as alice: HTTP %d %v", code, prob)
	}
	if _, err := p.client.GetUpload(p.as("carol"), &mediagwv1.GetUploadRequest{IdempotencyKey: "order-1"}); codeOf(err) != "PermissionDenied" {
		t.Fatalf("GetUpload of a caller not in the policy: %v", err)
	}
	inits := p.x.X.Stats().Requests["init"]
	second, err := p.upload(p.as("bob"), start, data, fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	if second.GetMediaId() == first.GetMediaId() || p.x.X.Stats().Requests["init"] != inits+1 {
		t.Fatalf("bob's upload with alice's key was not an upload of its own: %v (INITs %d → %d)", second, inits, p.x.X.Stats().Requests["init"])
	}
	again, err := p.upload(p.as("alice"), start, data, fixed(32<<10))
	if err != nil || again.GetMediaId() != first.GetMediaId() {
		t.Fatalf("alice's replay: %v %v", again, err)
	}

	// A new mediagw on the same ledger still knows who uploaded what (the
	// owner records are in the ledger's file): alice's media is hers, and
	// not bob's, with no replay needed.
	p.stop()
	e2 := startApp(t, p.x.URL, nil, p.flags...)
	get := func(sub string) error {
		_, err := e2.client.GetStatus(p.as(sub), &mediagwv1.GetStatusRequest{MediaId: first.GetMediaId()})
		return err
	}
	if err := get("alice"); err != nil {
		t.Fatalf("alice after the restart: %v", err)
	}
	if err := get("bob"); codeOf(err) != "NotFound" {
		t.Fatalf("bob after the restart: %v", err)
	}
	if _, err := uploadVia(p.as("alice"), e2.client, start, data, fixed(32<<10)); err != nil {
		t.Fatal(err)
	}
	if err := get("bob"); codeOf(err) != "NotFound" {
		t.Fatalf("bob after alice's replay: %v", err)
	}
}
