package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// scripted answers the n-th request (from 0) with the n-th function, the
// last one repeating.
func scripted(t *testing.T, steps ...func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		i := int(n.Add(1)) - 1
		steps[min(i, len(steps)-1)](w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func answer(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func reset(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		conn.Close()
	}
}

func stall(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

const okMedia = `{"data":{"id":"42","media_key":"7_42","size":3}}`

func TestCallRetries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		steps     []func(http.ResponseWriter, *http.Request)
		wantCalls int32
		wantErr   func(error) bool
	}{
		{"503 then ok", []func(http.ResponseWriter, *http.Request){answer(503, `{"title":"Service Unavailable"}`), answer(200, okMedia)}, 2, nil},
		{"408 then ok", []func(http.ResponseWriter, *http.Request){answer(408, ``), answer(200, okMedia)}, 2, nil},
		{"reset then ok", []func(http.ResponseWriter, *http.Request){reset, answer(200, okMedia)}, 2, nil},
		{"stall then ok", []func(http.ResponseWriter, *http.Request){stall, answer(200, okMedia)}, 2, nil},
		{"400 is final", []func(http.ResponseWriter, *http.Request){answer(400, `{"errors":[{"code":38,"message":"media parameter is missing."}]}`)}, 1,
			func(err error) bool {
				var ae *APIError
				return errors.As(err, &ae) && ae.Code == 38 && ae.Command == "APPEND"
			}},
		{"413 is final", []func(http.ResponseWriter, *http.Request){answer(413, ``)}, 1,
			func(err error) bool { var ae *APIError; return errors.As(err, &ae) && ae.StatusCode() == 413 }},
		{"500 until give up", []func(http.ResponseWriter, *http.Request){answer(500, `{"errors":["internal server error"]}`)}, 3,
			func(err error) bool {
				var ae *APIError
				return errors.As(err, &ae) && ae.HTTPStatus == 500 && strings.Contains(err.Error(), "internal server error")
			}},
		{"stall until give up", []func(http.ResponseWriter, *http.Request){stall}, 3,
			func(err error) bool {
				var te *TransportError
				return errors.As(err, &te) && te.StatusCode() == 504 && te.Segment == 0 && te.Attempts == 3
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, n := scripted(t, tc.steps...)
			c := newTestClient(t, srv.URL, func(cfg *Config) {
				cfg.MaxAttempts = 3
				cfg.StallTimeout = 200 * time.Millisecond
			})
			m, _, err := c.call(context.Background(), c.cfg.Credentials, c.d.appendReq("42", 0, []byte("abc"), "b"), callOpts{})
			if tc.wantErr == nil {
				if err != nil || m.ID != "42" {
					t.Fatalf("m=%+v err=%v", m, err)
				}
			} else if err == nil || !tc.wantErr(err) {
				t.Fatalf("unexpected err %v (%T)", err, err)
			}
			if got := n.Load(); got != tc.wantCalls {
				t.Fatalf("%d calls, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestCallCancelledPromptly(t *testing.T) {
	t.Parallel()
	srv, _ := scripted(t, stall)
	c := newTestClient(t, srv.URL, nil)
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("caller went away")
	time.AfterFunc(100*time.Millisecond, func() { cancel(cause) })
	start := time.Now()
	_, _, err := c.call(ctx, c.cfg.Credentials, c.d.finalizeReq("1"), callOpts{})
	if !errors.Is(err, cause) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancellation took %v", d)
	}
}

func TestFinalizeAlreadyFinalized(t *testing.T) {
	t.Parallel()
	// FINALIZE applied but its answer lost (503), the retry sees "already
	// finalized", STATUS says not found: the media is ready.
	srv, n := scripted(t,
		answer(503, ``),
		answer(400, `{"errors":[{"message":"BadRequest: Media already finalized"}],"title":"Invalid Request","type":"https://api.twitter.com/2/problems/invalid-request"}`),
		answer(400, `{"errors":[{"message":"BadRequest: Not found"}],"title":"Invalid Request"}`),
	)
	c := newTestClient(t, srv.URL, nil)
	m, err := c.finalize(context.Background(), c.cfg.Credentials, "42", nil)
	if err != nil || m.ID != "42" || m.Processing != nil || n.Load() != 3 {
		t.Fatalf("m=%+v err=%v calls=%d", m, err, n.Load())
	}
	// v1.1 code 324 with processing: STATUS supplies the state.
	srv2, _ := scripted(t,
		reset,
		answer(400, `{"errors":[{"code":324,"message":"Media id already finalized."}]}`),
		answer(200, `{"media_id_string":"42","processing_info":{"state":"in_progress","check_after_secs":1}}`),
	)
	c2 := newTestClient(t, srv2.URL, func(cfg *Config) { cfg.Dialect = DialectV1 })
	m, err = c2.finalize(context.Background(), c2.cfg.Credentials, "42", nil)
	if err != nil || m.Processing == nil || m.Processing.State != StateInProgress {
		t.Fatalf("m=%+v err=%v", m, err)
	}
	// On the first attempt "already finalized" is a real error.
	srv3, _ := scripted(t, answer(400, `{"errors":[{"code":324,"message":"Media id already finalized."}]}`))
	c3 := newTestClient(t, srv3.URL, nil)
	if _, err := c3.finalize(context.Background(), c3.cfg.Credentials, "42", nil); err == nil {
		t.Fatal("first-attempt already finalized accepted")
	}
}

// tokenServer is an OAuth2 token endpoint plus an API that accepts only the
// latest minted token.
func tokenServer(t *testing.T, ttl time.Duration) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var refreshes atomic.Int32
	var current atomic.Value
	current.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/2/oauth2/token" {
			_ = r.ParseForm()
			if r.Form.Get("grant_type") != "refresh_token" || r.Form.Get("refresh_token") == "" {
				answer(400, `{"error":"invalid_request"}`)(w, r)
				return
			}
			k := refreshes.Add(1)
			tok := "access-" + strconv.Itoa(int(k))
			current.Store(tok)
			answer(200, `{"token_type":"bearer","access_token":"`+tok+`","refresh_token":"rt-`+strconv.Itoa(int(k))+
				`","expires_in":`+strconv.Itoa(int(ttl/time.Second))+`}`)(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+current.Load().(string) {
			answer(401, `{"title":"Unauthorized","status":401,"detail":"Unauthorized"}`)(w, r)
			return
		}
		answer(200, okMedia)(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &refreshes
}

func TestOAuth2RefreshAndRetryOn401(t *testing.T) {
	t.Parallel()
	srv, refreshes := tokenServer(t, time.Hour)
	cfg := &oauth2.Config{ClientID: "cid", ClientSecret: "csecret",
		Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/2/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	// The initial access token is "valid" by expiry but unknown to the API:
	// the 401 triggers exactly one refresh, shared by all parallel calls.
	creds := OAuth2(cfg, &oauth2.Token{AccessToken: "stale", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)})
	c := newTestClient(t, srv.URL, nil)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, _, err := c.call(context.Background(), creds, c.d.finalizeReq("42"), callOpts{})
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if r := refreshes.Load(); r != 1 {
		t.Fatalf("%d refreshes, want 1", r)
	}
	for _, s := range creds.secrets() {
		if s == "access-1" {
			return
		}
	}
	t.Fatal("minted token not tracked for scrubbing")
}

func TestOAuth2RefreshFailureIsFinal(t *testing.T) {
	t.Parallel()
	srv, n := scripted(t, answer(400, `{"error":"invalid_grant","error_description":"refresh token rt-secret revoked"}`))
	cfg := &oauth2.Config{ClientID: "cid", ClientSecret: "csecret",
		Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
	creds := OAuth2(cfg, &oauth2.Token{RefreshToken: "rt-secret"})
	c := newTestClient(t, srv.URL, nil)
	_, _, err := c.call(context.Background(), creds, c.d.finalizeReq("42"), callOpts{})
	var tre *TokenRefreshError
	if !errors.As(err, &tre) || tre.StatusCode() != 401 || tre.ErrorCode != "invalid_grant" {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "rt-secret") || strings.Contains(err.Error(), "csecret") {
		t.Fatalf("secret in error: %v", err)
	}
	if strings.Contains(err.Error(), srv.URL) || strings.Contains(err.Error(), "http://") {
		t.Fatalf("URL in error: %v", err)
	}
	if n.Load() != 1 {
		t.Fatalf("%d token requests", n.Load())
	}
}
