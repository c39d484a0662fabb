package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// captured is one request as the server saw it.
type captured struct {
	method, path, query, contentType, auth string
	contentLength                          int64
	body                                   []byte
}

// capture starts a server that records requests and answers with reply.
func capture(t *testing.T, reply func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, func() []captured) {
	t.Helper()
	var mu sync.Mutex
	var got []captured
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, captured{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"),
			r.Header.Get("Authorization"), r.ContentLength, b})
		mu.Unlock()
		reply(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []captured {
		mu.Lock()
		defer mu.Unlock()
		return append([]captured(nil), got...)
	}
}

func newTestClient(t *testing.T, base string, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: base, Credentials: BearerToken("test-token"), BackoffBase: 1, BackoffMax: 2}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// multipartFields decodes a multipart body into its fields and file part.
func multipartFields(t *testing.T, c captured) (map[string]string, []byte) {
	t.Helper()
	_, params, err := mime.ParseMediaType(c.contentType)
	if err != nil {
		t.Fatalf("content type %q: %v", c.contentType, err)
	}
	mr := multipart.NewReader(bytes.NewReader(c.body), params["boundary"])
	fields := map[string]string{}
	var media []byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		if p.FormName() == "media" {
			media = b
		} else {
			fields[p.FormName()] = string(b)
		}
	}
	return fields, media
}

func TestDialectRequests(t *testing.T) {
	t.Parallel()
	seg := bytes.Repeat([]byte("\x00\r\n--abc"), 1000)
	params := InitParams{MediaType: "video/mp4", MediaCategory: "tweet_video", TotalBytes: 12345,
		AdditionalOwners: []string{"11", "22"}, Shared: true}
	for _, tc := range []struct {
		d                                         Dialect
		initPath, appendPath, finPath, statusPath string
	}{
		{DialectV2, "/2/media/upload/initialize", "/2/media/upload/77/append", "/2/media/upload/77/finalize", "/2/media/upload"},
		{DialectV2Command, "/2/media/upload", "/2/media/upload", "/2/media/upload", "/2/media/upload"},
		{DialectV1, "/1.1/media/upload.json", "/1.1/media/upload.json", "/1.1/media/upload.json", "/1.1/media/upload.json"},
	} {
		t.Run(string(tc.d), func(t *testing.T) {
			t.Parallel()
			srv, got := capture(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, `{"media_id_string":"77"}`)
			})
			c := newTestClient(t, srv.URL+"/", func(cfg *Config) { cfg.Dialect = tc.d })
			cr := c.cfg.Credentials
			ctx := context.Background()
			r, err := c.d.initReq(params)
			if err != nil {
				t.Fatal(err)
			}
			for _, req := range []*request{r, c.d.appendReq("77", 3, seg, newBoundary()), c.d.finalizeReq("77"), c.d.statusReq("77")} {
				if _, _, err := c.call(ctx, cr, req, callOpts{}); err != nil {
					t.Fatal(err)
				}
			}
			g := got()
			if len(g) != 4 {
				t.Fatalf("%d requests", len(g))
			}
			for i, want := range []string{tc.initPath, tc.appendPath, tc.finPath, tc.statusPath} {
				if g[i].path != want {
					t.Errorf("request %d path %q, want %q", i, g[i].path, want)
				}
				if g[i].auth != "Bearer test-token" {
					t.Errorf("request %d auth %q", i, g[i].auth)
				}
				if g[i].contentLength >= 0 && g[i].contentLength != int64(len(g[i].body)) {
					t.Errorf("request %d Content-Length %d, body %d", i, g[i].contentLength, len(g[i].body))
				}
			}
			// INIT
			if tc.d == DialectV2 {
				var body map[string]any
				if g[0].contentType != "application/json" || json.Unmarshal(g[0].body, &body) != nil {
					t.Fatalf("INIT %q %s", g[0].contentType, g[0].body)
				}
				if body["media_type"] != "video/mp4" || body["total_bytes"] != float64(12345) ||
					body["media_category"] != "tweet_video" || body["shared"] != true || len(body) != 5 {
					t.Errorf("INIT body %s", g[0].body)
				}
			} else {
				v, _ := url.ParseQuery(string(g[0].body))
				if g[0].contentType != "application/x-www-form-urlencoded" || v.Get("command") != "INIT" ||
					v.Get("total_bytes") != "12345" || v.Get("media_type") != "video/mp4" ||
					v.Get("media_category") != "tweet_video" || v.Get("additional_owners") != "11,22" {
					t.Errorf("INIT form %q %s", g[0].contentType, g[0].body)
				}
			}
			// APPEND: multipart with the segment verbatim.
			fields, media := multipartFields(t, g[1])
			if !bytes.Equal(media, seg) || fields["segment_index"] != "3" {
				t.Errorf("APPEND fields %v, media %d bytes", fields, len(media))
			}
			if tc.d != DialectV2 && (fields["command"] != "APPEND" || fields["media_id"] != "77") {
				t.Errorf("APPEND fields %v", fields)
			}
			// FINALIZE
			if tc.d == DialectV2 {
				if g[2].method != http.MethodPost || len(g[2].body) != 0 {
					t.Errorf("FINALIZE %s %q", g[2].method, g[2].body)
				}
			} else if v, _ := url.ParseQuery(string(g[2].body)); v.Get("command") != "FINALIZE" || v.Get("media_id") != "77" {
				t.Errorf("FINALIZE form %s", g[2].body)
			}
			// STATUS is always a GET with the query.
			if q, _ := url.ParseQuery(g[3].query); g[3].method != http.MethodGet || q.Get("command") != "STATUS" || q.Get("media_id") != "77" {
				t.Errorf("STATUS %s ?%s", g[3].method, g[3].query)
			}
		})
	}
}

// TestAppendBodyReplayedOnRedirect checks GetBody: a 307 makes net/http send
// the multipart body a second time, byte for byte.
func TestAppendBodyReplayedOnRedirect(t *testing.T) {
	t.Parallel()
	srv, got := capture(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/moved") {
			http.Redirect(w, r, "/moved"+r.URL.Path, http.StatusTemporaryRedirect)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	c := newTestClient(t, srv.URL, nil)
	seg := bytes.Repeat([]byte{1, 2, 3}, 5000)
	if _, _, err := c.call(context.Background(), c.cfg.Credentials, c.d.appendReq("9", 0, seg, newBoundary()), callOpts{}); err != nil {
		t.Fatal(err)
	}
	g := got()
	if len(g) != 2 || !bytes.Equal(g[0].body, g[1].body) || g[1].path != "/moved/2/media/upload/9/append" {
		t.Fatalf("redirect: %d requests", len(g))
	}
	if _, media := multipartFields(t, g[1]); !bytes.Equal(media, seg) {
		t.Fatal("replayed segment differs")
	}
}

// TestNoRedirectToAnotherHost checks that a redirect to another host is
// not followed: the token and the segment stay with X.
func TestNoRedirectToAnotherHost(t *testing.T) {
	t.Parallel()
	other, reached := capture(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv, _ := capture(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	c := newTestClient(t, srv.URL, nil)
	_, _, err := c.call(context.Background(), c.cfg.Credentials, c.d.appendReq("9", 0, []byte("segment"), newBoundary()), callOpts{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusTemporaryRedirect {
		t.Fatalf("cross-host redirect: %v, want the 307 as an APIError", err)
	}
	if n := len(reached()); n != 0 {
		t.Fatalf("the other host received %d requests", n)
	}
}

func TestOAuth1Header(t *testing.T) {
	t.Parallel()
	srv, got := capture(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	c := newTestClient(t, srv.URL, func(cfg *Config) {
		cfg.Dialect = DialectV1
		cfg.Credentials = OAuth1("ck", "cs-secret", "tok", "ts-secret")
	})
	if _, _, err := c.call(context.Background(), c.cfg.Credentials, c.d.finalizeReq("5"), callOpts{}); err != nil {
		t.Fatal(err)
	}
	a := got()[0].auth
	for _, want := range []string{"OAuth ", `oauth_consumer_key="ck"`, `oauth_token="tok"`, "oauth_signature=", `oauth_signature_method="HMAC-SHA1"`} {
		if !strings.Contains(a, want) {
			t.Errorf("Authorization %q lacks %q", a, want)
		}
	}
	if strings.Contains(a, "secret") {
		t.Error("secret in Authorization header")
	}
	if got()[0].body == nil || !strings.Contains(string(got()[0].body), "command=FINALIZE") {
		t.Error("form body lost after signing")
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{},
		{BaseURL: "ftp://x"},
		{BaseURL: "/relative"},
		{BaseURL: "https://user:pw@x.example"},
		{BaseURL: "https://x.example", Dialect: "v3"},
		{BaseURL: "https://x.example", SegmentSize: 8 << 20, MaxSegmentSize: 4 << 20},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	c, err := New(Config{BaseURL: "https://api.x.com"})
	if err != nil {
		t.Fatal(err)
	}
	if tr, ok := c.rt.(*http.Transport); !ok || tr.MaxIdleConnsPerHost < c.cfg.MaxInFlight {
		t.Errorf("default transport not tuned: %T", c.rt)
	}
	if _, err := c.Begin(context.Background(), nil, InitParams{MediaType: "video/mp4", TotalBytes: 1}); err == nil {
		t.Error("Begin without credentials accepted")
	}
}
