package xfake_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dghubble/oauth1"

	"github.com/mediagw/mediagw/upstream/xfake"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// signed returns a client whose requests are signed with OAuth 1.0a by
// dghubble/oauth1; tamper, if set, alters each request after signing.
func (c *client) signed(consumerSecret string, tamper func(*http.Request)) *client {
	cfg := oauth1.NewConfig("ck", consumerSecret)
	hc := cfg.Client(context.Background(), oauth1.NewToken("at", "ats"))
	hc.Transport.(*oauth1.Transport).Base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if tamper != nil {
			tamper(r)
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	hc.Timeout = 10 * time.Second
	cp := *c
	cp.hc, cp.auth = hc, ""
	return &cp
}

func TestOAuth1Signatures(t *testing.T) {
	t.Parallel()
	base := newClient(t, xfake.Options{OAuth1: &xfake.OAuth1Keys{ConsumerKey: "ck", ConsumerSecret: "cs", Token: "at", TokenSecret: "ats"}})
	good := base.signed("cs", nil)

	// v2 dedicated, JSON body (not signed) and query (signed).
	wantStatus(t, good.postJSON("/2/media/upload/initialize", `{"media_type":"video/mp4","total_bytes":4}`), http.StatusOK)
	invalid(t, good.v2Status("1234567890123456789"), "BadRequest: Not found")
	// v1.1 urlencoded (body signed) and multipart (body not signed).
	ini := good.postForm(v11, url.Values{"command": {"INIT"}, "total_bytes": {"4"}, "media_type": {"video/mp4"}})
	wantStatus(t, ini, http.StatusAccepted)
	id := ini.obj(t)["media_id_string"].(string)
	wantStatus(t, good.postMultipart(v11+"?command=APPEND&media_id="+id,
		field{name: "segment_index", value: "0"}, field{name: "media", value: "\x00\x00\x00\x00", file: true}), http.StatusNoContent)

	wrongKey := base.signed("not-cs", nil)
	r := wrongKey.postJSON("/2/media/upload/initialize", `{"media_type":"video/mp4","total_bytes":4}`)
	wantStatus(t, r, http.StatusUnauthorized)
	sameJSON(t, r.body, `{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}`)
	r = wrongKey.postForm(v11, url.Values{"command": {"INIT"}, "total_bytes": {"4"}, "media_type": {"video/mp4"}})
	wantStatus(t, r, http.StatusUnauthorized)
	sameJSON(t, r.body, `{"errors":[{"code":32,"message":"Could not authenticate you."}]}`)

	tampered := map[string]func(*http.Request){
		"query": func(r *http.Request) { r.URL.RawQuery += "&media_id=1" },
		"body": func(r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			nb := strings.Replace(string(b), "total_bytes=4", "total_bytes=5", 1)
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(nb)), int64(len(nb))
		},
		"method": func(r *http.Request) { r.Method = http.MethodPut },
		"path":   func(r *http.Request) { r.URL.Path = "/1.1/media/upload.json/" },
		"host":   func(r *http.Request) { r.Host = "upload.twitter.com" },
	}
	for name, tamper := range tampered {
		t.Run(name, func(t *testing.T) {
			r := base.signed("cs", tamper).postForm(v11, url.Values{"command": {"INIT"}, "total_bytes": {"4"}, "media_type": {"video/mp4"}})
			if name == "path" && r.status == http.StatusNotFound {
				return // the mux refuses the path before authentication
			}
			wantStatus(t, r, http.StatusUnauthorized)
		})
	}
	// A well-formed but unsigned header fails verification too.
	wantStatus(t, base.as(oauthHeader("at")).postForm(v11, url.Values{"command": {"INIT"}}), http.StatusUnauthorized)
}

func TestBearerTokens(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{Tokens: []string{"A", "B"}})
	body := `{"media_type":"video/mp4","total_bytes":4}`
	for _, auth := range []string{"Bearer A", "bearer B"} {
		wantStatus(t, c.as(auth).postJSON("/2/media/upload/initialize", body), http.StatusOK)
	}
	for _, auth := range []string{"Bearer C", "Bearer ", "", "Basic QTpC", "OAuth broken"} {
		r := c.as(auth).postJSON("/2/media/upload/initialize", body)
		wantStatus(t, r, http.StatusUnauthorized)
		sameJSON(t, r.body, `{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}`)
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("content-type %q", ct)
		}
	}
	// Empty Tokens accepts any non-empty bearer.
	open := newClient(t, xfake.Options{})
	wantStatus(t, open.as("Bearer anything").postJSON("/2/media/upload/initialize", body), http.StatusOK)
}

func TestTokenRefresh(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := newClient(t, xfake.Options{Now: clk.Now, Tokens: []string{"static"}, ClientID: "cid", ClientSecret: "csec",
		RefreshTokens: []string{"r1"}, AccessTokenTTL: time.Hour})
	refresh := func(user, pass, rt string) reply {
		req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/2/oauth2/token",
			strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return reply{status: resp.StatusCode, header: resp.Header, body: b}
	}
	r := refresh("cid", "csec", "r1")
	wantStatus(t, r, http.StatusOK)
	sameShape(t, r.body, `{"token_type":"bearer","expires_in":7200,"access_token":"a","scope":"s","refresh_token":"r"}`)
	tok := r.obj(t)
	if tok["expires_in"] != float64(3600) || !strings.Contains(tok["scope"].(string), "media.write") || tok["token_type"] != "bearer" {
		t.Errorf("token answer %s", r)
	}
	access, rt2 := tok["access_token"].(string), tok["refresh_token"].(string)

	// Refresh tokens rotate: r1 is spent.
	r = refresh("cid", "csec", "r1")
	wantStatus(t, r, http.StatusBadRequest)
	sameJSON(t, r.body, `{"error":"invalid_request","error_description":"Value passed for the token was invalid."}`)
	wantStatus(t, refresh("cid", "wrong", rt2), http.StatusUnauthorized)
	wantStatus(t, refresh("cid", "csec", "never-issued"), http.StatusBadRequest)

	body := `{"media_type":"video/mp4","total_bytes":4}`
	wantStatus(t, c.as("Bearer "+access).postJSON("/2/media/upload/initialize", body), http.StatusOK)
	r = refresh("cid", "csec", rt2)
	wantStatus(t, r, http.StatusOK)
	access2 := r.obj(t)["access_token"].(string)
	clk.Add(time.Hour + time.Second)
	wantStatus(t, c.as("Bearer "+access).postJSON("/2/media/upload/initialize", body), http.StatusUnauthorized)
	wantStatus(t, c.as("Bearer "+access2).postJSON("/2/media/upload/initialize", body), http.StatusUnauthorized)
	wantStatus(t, c.as("Bearer static").postJSON("/2/media/upload/initialize", body), http.StatusOK)

	req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/2/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cid", "csec")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("client_credentials grant: %d", resp.StatusCode)
	}
}
