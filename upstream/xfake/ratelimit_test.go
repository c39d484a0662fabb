package xfake_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

func TestRateLimitWindows(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := newClient(t, xfake.Options{Now: clk.Now, RateLimits: map[string]xfake.RateLimit{
		"init":      {Limit: 3, Window: time.Minute},
		"v1.1-init": {Limit: 2, Window: time.Minute},
		"status":    {},
	}})
	body := `{"media_type":"video/mp4","total_bytes":4}`
	reset := strconv.FormatInt(clk.Now().Add(time.Minute).Unix(), 10)
	for i := 2; i >= 0; i-- {
		r := c.postJSON("/2/media/upload/initialize", body)
		wantStatus(t, r, http.StatusOK)
		if r.header.Get("x-rate-limit-limit") != "3" || r.header.Get("x-rate-limit-remaining") != strconv.Itoa(i) ||
			r.header.Get("x-rate-limit-reset") != reset {
			t.Errorf("headers %v", r.header)
		}
	}
	// Command-style INIT shares the "init" window.
	r := c.postForm("/2/media/upload", url.Values{"command": {"INIT"}, "media_type": {"video/mp4"}, "total_bytes": {"4"}})
	wantStatus(t, r, http.StatusTooManyRequests)
	sameJSON(t, r.body, rec(t, "v2 429"))
	if r.header.Get("Content-Type") != "application/problem+json" || r.header.Get("x-rate-limit-remaining") != "0" ||
		r.header.Get("x-rate-limit-reset") != reset {
		t.Errorf("429 headers %v", r.header)
	}
	// Windows are per token; requests refused by auth do not count.
	other := c.as("Bearer other")
	wantStatus(t, other.postJSON("/2/media/upload/initialize", body), http.StatusOK)
	// Other keys are unaffected; a disabled key sends no headers.
	st := c.v2Status("1234567890123456789")
	if st.status != http.StatusBadRequest || st.header.Get("x-rate-limit-limit") != "" {
		t.Errorf("status %s %v", st, st.header)
	}
	fin := c.v2Finalize("1234567890123456789")
	if fin.header.Get("x-rate-limit-limit") != "1875" {
		t.Errorf("finalize default limit header %q", fin.header.Get("x-rate-limit-limit"))
	}
	// The window resets.
	clk.Add(time.Minute)
	r = c.postJSON("/2/media/upload/initialize", body)
	wantStatus(t, r, http.StatusOK)
	if r.header.Get("x-rate-limit-remaining") != "2" {
		t.Errorf("after reset remaining %q", r.header.Get("x-rate-limit-remaining"))
	}

	// v1.1: code 88, keyed by oauth_token.
	oa := c.as(oauthHeader("tok1"))
	v1init := url.Values{"command": {"INIT"}, "media_type": {"video/mp4"}, "total_bytes": {"4"}}
	wantStatus(t, c.as("").postForm(v11, v1init), http.StatusUnauthorized) // not counted
	wantStatus(t, oa.postForm(v11, v1init), http.StatusAccepted)
	wantStatus(t, oa.postForm(v11, v1init), http.StatusAccepted)
	r = oa.postForm(v11, v1init)
	wantStatus(t, r, http.StatusTooManyRequests)
	sameJSON(t, r.body, `{"errors":[{"code":88,"message":"Rate limit exceeded"}]}`)
	if r.header.Get("x-rate-limit-remaining") != "0" {
		t.Errorf("v1.1 429 headers %v", r.header)
	}
	wantStatus(t, c.as(oauthHeader("tok2")).postForm(v11, v1init), http.StatusAccepted)
	if got := c.srv.X.Stats().RateLimited; got != 2 {
		t.Errorf("Stats.RateLimited = %d", got)
	}
}

func TestRateLimitAppendsInFlight(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{RateLimits: map[string]xfake.RateLimit{"append": {Limit: 2, Window: time.Hour}}})
	id := c.v2Init("video/mp4", 3, "")
	wantStatus(t, c.v2Append(id, 0, []byte("a")), http.StatusOK)
	wantStatus(t, c.v2Append(id, 1, []byte("b")), http.StatusOK)
	r := c.v2Append(id, 2, []byte("c"))
	wantStatus(t, r, http.StatusTooManyRequests)
	if info := c.srv.Media(t, id); info.Segments != 2 {
		t.Errorf("a refused APPEND was applied: %+v", info)
	}
}
