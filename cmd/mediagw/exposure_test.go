package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// tryApp builds mediagw with flags (after loopback test defaults) and
// returns newApp's error and the logs; a started app is closed again.
func tryApp(t *testing.T, flags ...string) (error, string) {
	t.Helper()
	x := xfaketest.New(t, xfake.Options{})
	args := append([]string{"--grpc-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0", "--admin-addr=127.0.0.1:0",
		"--x-api-url=" + x.URL}, flags...)
	cfg, err := parseConfig(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		return err, ""
	}
	logs := &syncBuffer{}
	tel, err := setupTelemetry(context.Background(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)), tel)
	if err == nil {
		a.closeAll()
	}
	return err, logs.String()
}

// TestPublicListenerNeedsAuth: without authentication, a non-loopback
// listen address stops mediagw with a message naming the opt-out.
func TestPublicListenerNeedsAuth(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"--http-addr", "--grpc-addr"} {
		err, _ := tryApp(t, flag+"=0.0.0.0:0")
		if err == nil || !strings.Contains(err.Error(), flag+" 0.0.0.0:") || !strings.Contains(err.Error(), "--insecure-no-auth") ||
			!strings.Contains(err.Error(), "--tls-client-ca") || !strings.Contains(err.Error(), "--auth-jwks") {
			t.Fatalf("%s on all interfaces without auth: %v", flag, err)
		}
	}
	// localhost is loopback.
	if err, _ := tryApp(t, "--http-addr=localhost:0"); err != nil {
		t.Fatalf("localhost: %v", err)
	}
	err, logs := tryApp(t, "--http-addr=0.0.0.0:0", "--insecure-no-auth")
	if err != nil || !strings.Contains(logs, "--insecure-no-auth: serving a non-loopback address without authentication") {
		t.Fatalf("with --insecure-no-auth: %v\n%s", err, logs)
	}
	k := ecKey(t, "k")
	err, logs = tryApp(t, append(jwtFlags(writeFile(t, "jwks.json", jwks(t, k))), "--http-addr=0.0.0.0:0")...)
	if err != nil || !strings.Contains(logs, "bearer tokens cross the network in clear text") {
		t.Fatalf("with bearer tokens: %v\n%s", err, logs)
	}
}

// TestNoXNoStart: mediagw never falls back to its emulator; with neither
// --x-api-url nor --emulator it refuses to start, naming both.
func TestNoXNoStart(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		flags []string
		want  []string
	}{
		{nil, []string{"--x-api-url", "--emulator"}},
		{[]string{"--emulator", "--x-api-url=http://127.0.0.1:1"}, []string{"contradict"}},
	} {
		_, err := parseConfig(c.flags, func(string) string { return "" }, io.Discard)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %v, want %q", c.flags, err, w)
			}
		}
	}
	if _, err := parseConfig([]string{"--emulator"}, func(string) string { return "" }, io.Discard); err != nil {
		t.Fatalf("--emulator: %v", err)
	}
}

func TestAuthConfigErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		flags []string
		want  string
	}{
		{[]string{"--tls-cert=c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-client-ca=ca.pem"}, "--tls-client-ca needs --tls-cert and --tls-key"},
		{[]string{"--auth-jwks=j.json"}, "--auth-jwks needs --auth-issuer and --auth-audience"},
		{[]string{"--auth-issuer=x"}, "need --auth-jwks"},
		{[]string{"--auth-jwks=j.json", "--auth-issuer=i", "--auth-audience=a", "--insecure-no-auth"}, "--insecure-no-auth contradicts"},
		{[]string{"--callers=c.yaml"}, "--callers needs authentication"},
	}
	for _, c := range cases {
		_, err := parseConfig(c.flags, func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.flags, err, c.want)
		}
	}
	// The environment twins work the same.
	env := map[string]string{"MEDIAGW_INSECURE_NO_AUTH": "true", "MEDIAGW_ADMIN_ADDR": "127.0.0.1:0", "MEDIAGW_EMULATOR": "true"}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || !cfg.InsecureNoAuth || cfg.AdminAddr != "127.0.0.1:0" || !cfg.Emulator {
		t.Fatalf("environment: %+v %v", cfg, err)
	}
	// Files that do not load stop mediagw at start.
	for _, f := range [][]string{
		{"--tls-cert=/nonexistent/c.pem", "--tls-key=/nonexistent/k.pem"},
		jwtFlags("/nonexistent/jwks.json"),
		jwtFlags("http://10.1.2.3/keys"),
	} {
		if err, _ := tryApp(t, f...); err == nil {
			t.Errorf("%v: started", f)
		}
	}
}

// TestAdminPort: metrics, health and pprof are on the admin port, not on
// the public one; /readyz turns 503 when mediagw drains.
func TestAdminPort(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{}, "--drain-timeout=20s")
	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually(t, 10*time.Second, "mediagw ready", e.app.ready.Load)
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		if code := get(e.adminURL + path); code != http.StatusOK {
			t.Errorf("admin %s: HTTP %d", path, code)
		}
		if code := get(e.httpURL + path); code != http.StatusNotFound {
			t.Errorf("public %s: HTTP %d, want 404", path, code)
		}
	}
	data := media("video/mp4", 200<<10, 12)
	stream := e.openUpload(context.Background(), data, 1000)
	eventually(t, 10*time.Second, "the INIT answered", func() bool { return e.x.X.Stats().Requests["init"] > 0 })
	e.cancel()
	eventually(t, 10*time.Second, "/readyz turning 503 while draining", func() bool { return get(e.adminURL+"/readyz") == http.StatusServiceUnavailable })
	if err := stream.Send(chunkMsg(data[1000:])); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatalf("the upload in flight during the drain: %v", err)
	}
	e.waitServed("mediagw did not stop")
}

// TestPprofOnlyWhenAsked: pprof is off by default; with --pprof it is on
// the admin port, and its cmdline never shows a flag's value.
func TestPprofOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	off := newEnv(t, xfake.Options{})
	res, err := http.Get(off.adminURL + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("pprof without --pprof: HTTP %d", res.StatusCode)
	}
	on := newEnv(t, xfake.Options{}, "--pprof", "--x-client-secret=flag-secret-value")
	for path, must := range map[string]string{"/debug/pprof/": "goroutine", "/debug/pprof/cmdline": ""} {
		res, err := http.Get(on.adminURL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(b), must) || strings.Contains(string(b), "flag-secret-value") ||
			strings.Contains(string(b), "--") {
			t.Fatalf("%s with --pprof: HTTP %d %.200s", path, res.StatusCode, b)
		}
	}
}

// TestSecretFlagWarning: a secret given as a flag is warned about by
// name, never by value.
func TestSecretFlagWarning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	logs := e.logs.String()
	if !strings.Contains(logs, `"flag":"--x-token","env":"MEDIAGW_X_TOKEN"`) || strings.Contains(logs, testToken) {
		t.Fatalf("logs:\n%s", logs)
	}
}

// TestSampledLogs: a flood of records passes a bounded number, and the
// next one that passes says how many were left out.
func TestSampledLogs(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	log := slog.New(sampled(slog.NewJSONHandler(&buf, nil), 1, 3))
	for range 100 {
		log.Info("refused handshake")
	}
	if n := strings.Count(buf.String(), "refused handshake"); n != 3 {
		t.Fatalf("%d lines of 100, want the burst of 3", n)
	}
	h := sampled(slog.NewJSONHandler(&buf, nil), 1000, 1).(sampledHandler)
	h.suppressed.Store(7)
	slog.New(h).Info("after")
	if !strings.Contains(buf.String(), `"lines_not_logged":7`) {
		t.Fatalf("the next line does not count the left-out ones:\n%s", buf.String())
	}
}
