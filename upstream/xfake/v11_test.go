package xfake_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

const v11 = "/1.1/media/upload.json"

// oauthHeader is a well-formed, unsigned OAuth 1.0a header: accepted when
// Options.OAuth1 is nil.
func oauthHeader(token string) string {
	return `OAuth oauth_consumer_key="ck", oauth_nonce="n1", oauth_signature="c2ln", oauth_signature_method="HMAC-SHA1", oauth_timestamp="1700000000", oauth_token="` + token + `", oauth_version="1.0"`
}

func TestV11Flow(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := newClient(t, xfake.Options{Now: clk.Now, ProcessingTime: time.Second}).as(oauthHeader("tok"))

	// Without media_category: INIT 202 (v1_01), APPEND 204 empty (v1_02),
	// FINALIZE 201 synchronous (v1_04).
	data := mp4(3000)
	ini := c.postForm(v11, url.Values{"command": {"INIT"}, "total_bytes": {"3000"}, "media_type": {"video/mp4"}})
	wantStatus(t, ini, http.StatusAccepted)
	sameShape(t, ini.body, rec(t, "v1 INIT"))
	if ini.header.Get("x-rate-limit-limit") != "200" {
		t.Errorf("INIT x-rate-limit-limit %q, want 200", ini.header.Get("x-rate-limit-limit"))
	}
	o := ini.obj(t)
	id := o["media_id_string"].(string)
	if o["expires_after_secs"] != float64(86400) {
		t.Errorf("INIT %s", ini)
	}
	app := c.postMultipart(v11, field{name: "command", value: "APPEND"}, field{name: "media_id", value: id},
		field{name: "segment_index", value: "0"}, field{name: "media", value: string(data[:2000]), file: true})
	wantStatus(t, app, http.StatusNoContent)
	if len(app.body) != 0 || app.header.Get("x-rate-limit-limit") != "20000" {
		t.Errorf("APPEND %s %v", app, app.header)
	}
	// media_data (base64) on APPEND.
	wantStatus(t, c.postMultipart(v11, field{name: "command", value: "APPEND"}, field{name: "media_id", value: id},
		field{name: "segment_index", value: "1"}, field{name: "media_data", value: base64.StdEncoding.EncodeToString(data[2000:])}),
		http.StatusNoContent)
	fin := c.postForm(v11, url.Values{"command": {"FINALIZE"}, "media_id": {id}})
	wantStatus(t, fin, http.StatusCreated)
	sameShape(t, fin.body, rec(t, "v1 FINALIZE sync"))
	if fin.header.Get("x-rate-limit-limit") != "615" {
		t.Errorf("FINALIZE limit header %q", fin.header.Get("x-rate-limit-limit"))
	}
	sum := sha256.Sum256(data)
	if info := c.srv.Media(t, id); info.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 %s", info.SHA256)
	}
	// STATUS on media that never had processing.
	st := c.do(http.MethodGet, v11+"?command=STATUS&media_id="+id, "", nil)
	wantStatus(t, st, http.StatusNotFound)
	sameJSON(t, st.body, `{"errors":[{"code":324,"message":"Invalid media id."}]}`)

	// With media_category: media_key on INIT (v1_05), FINALIZE 200 pending
	// (v1_06), then STATUS by GET.
	ini = c.postForm(v11, url.Values{"command": {"INIT"}, "total_bytes": {"3000"}, "media_type": {"video/mp4"}, "media_category": {"tweet_video"}})
	wantStatus(t, ini, http.StatusAccepted)
	sameShape(t, ini.body, rec(t, "v1 INIT category"))
	id = ini.obj(t)["media_id_string"].(string)
	if ini.obj(t)["media_key"] != "7_"+id {
		t.Errorf("media_key %s", ini)
	}
	wantStatus(t, c.postMultipart(v11, field{name: "command", value: "APPEND"}, field{name: "media_id", value: id},
		field{name: "segment_index", value: "0"}, field{name: "media", value: string(data), file: true}), http.StatusNoContent)
	fin = c.postForm(v11, url.Values{"command": {"FINALIZE"}, "media_id": {id}})
	wantStatus(t, fin, http.StatusOK)
	sameShape(t, fin.body, rec(t, "v1 FINALIZE async"))
	// STATUS sent as POST is code 38.
	post := c.postForm(v11, url.Values{"command": {"STATUS"}, "media_id": {id}})
	wantStatus(t, post, http.StatusBadRequest)
	sameJSON(t, post.body, `{"errors":[{"code":38,"message":"media parameter is missing."}]}`)
	clk.Add(2 * time.Second)
	st = c.do(http.MethodGet, v11+"?command=STATUS&media_id="+id, "", nil)
	wantStatus(t, st, http.StatusOK)
	if pi := st.obj(t)["processing_info"].(map[string]any); pi["state"] != "succeeded" || st.obj(t)["video"] == nil {
		t.Errorf("STATUS %s", st)
	}
	if st.header.Get("x-rate-limit-limit") != "1000" {
		t.Errorf("STATUS limit header %q", st.header.Get("x-rate-limit-limit"))
	}
	// FINALIZE retry.
	again := c.postForm(v11, url.Values{"command": {"FINALIZE"}, "media_id": {id}})
	wantStatus(t, again, http.StatusBadRequest)
	sameJSON(t, again.body, `{"errors":[{"code":324,"message":"Media id already finalized."}]}`)
}

func TestV11Errors(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{})
	oa := c.as(oauthHeader("tok"))
	init := url.Values{"command": {"INIT"}, "total_bytes": {"10"}, "media_type": {"video/mp4"}}

	// v1.1 takes OAuth 1.0a only.
	r := c.postForm(v11, init)
	wantStatus(t, r, http.StatusForbidden)
	sameJSON(t, r.body, `{"errors":[{"code":220,"message":"Your credentials do not allow access to this resource."}]}`)
	for _, auth := range []string{"", "OAuth oauth_token=\"x\"", "Basic dTpw"} {
		r = c.as(auth).postForm(v11, init)
		wantStatus(t, r, http.StatusUnauthorized)
		sameJSON(t, r.body, `{"errors":[{"code":32,"message":"Could not authenticate you."}]}`)
	}

	bad := oa.postForm(v11, url.Values{"command": {"INIT"}, "total_bytes": {"10"}, "media_type": {"video/avi"}})
	wantStatus(t, bad, http.StatusBadRequest)
	sameJSON(t, bad.body, rec(t, "v1 request error"))
	sameJSON(t, oa.postForm(v11, url.Values{"command": {"INIT"}, "media_type": {"video/mp4"}}).body,
		`{"errors":[{"code":38,"message":"total_bytes parameter is missing."}]}`)
	sameJSON(t, oa.postJSON(v11, `{"command":"INIT"}`).body, `{"errors":[{"code":38,"message":"media parameter is missing."}]}`)

	id := oa.postForm(v11, init).obj(t)["media_id_string"].(string)
	seg := oa.postMultipart(v11, field{name: "command", value: "APPEND"}, field{name: "media_id", value: id},
		field{name: "segment_index", value: "1000"}, field{name: "media", value: "x", file: true})
	wantStatus(t, seg, http.StatusBadRequest)
	sameJSON(t, seg.body, `{"request":"/1.1/media/upload.json","error":"SegmentIndex must be between 0 and 999."}`)
	wantStatus(t, oa.postMultipart(v11, field{name: "command", value: "APPEND"}, field{name: "media_id", value: id},
		field{name: "segment_index", value: "0"}, field{name: "media", value: "12345", file: true}), http.StatusNoContent)
	// The "Segments do not add up" error uses the {"request","error"} shape on v1.1.
	fin := oa.postForm(v11, url.Values{"command": {"FINALIZE"}, "media_id": {id}})
	wantStatus(t, fin, http.StatusBadRequest)
	sameJSON(t, fin.body, `{"request":"/1.1/media/upload.json","error":"Segments do not add up to provided total file size."}`)
	unknown := oa.postForm(v11, url.Values{"command": {"FINALIZE"}, "media_id": {"1234567890123456789"}})
	wantStatus(t, unknown, http.StatusBadRequest)
	sameJSON(t, unknown.body, `{"errors":[{"code":324,"message":"Invalid media id."}]}`)
}
