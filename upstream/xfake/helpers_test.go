package xfake_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// client speaks to an emulator like a curl user would.
type client struct {
	t    testing.TB
	srv  *xfaketest.Server
	hc   *http.Client
	auth string // Authorization header value; "" sends none
}

func newClient(t testing.TB, opts xfake.Options) *client {
	t.Helper()
	return &client{t: t, srv: xfaketest.New(t, opts), hc: &http.Client{Timeout: 30 * time.Second}, auth: "Bearer T"}
}

// as returns a copy of c sending auth instead.
func (c *client) as(auth string) *client {
	cp := *c
	cp.auth = auth
	return &cp
}

// reply is a fully read answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// obj decodes the body as a JSON object.
func (r reply) obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// data returns the "data" object of a v2 answer.
func (r reply) data(t testing.TB) map[string]any {
	t.Helper()
	d, ok := r.obj(t)["data"].(map[string]any)
	if !ok {
		t.Fatalf("no data object in %s", r)
	}
	return d
}

func (c *client) do(method, path, ctype string, body io.Reader) reply {
	c.t.Helper()
	rep, err := c.try(method, path, ctype, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return rep
}

func (c *client) try(method, path, ctype string, body io.Reader) (reply, error) {
	req, err := http.NewRequest(method, c.srv.URL+path, body)
	if err != nil {
		return reply{}, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func (c *client) postJSON(path, body string) reply {
	c.t.Helper()
	return c.do(http.MethodPost, path, "application/json", strings.NewReader(body))
}

func (c *client) postForm(path string, vals url.Values) reply {
	c.t.Helper()
	return c.do(http.MethodPost, path, "application/x-www-form-urlencoded", strings.NewReader(vals.Encode()))
}

// field is one multipart field; file marks a file part.
type field struct {
	name, value string
	file        bool
}

func multipartBody(t testing.TB, fields ...field) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		var w io.Writer
		var err error
		if f.file {
			w, err = mw.CreateFormFile(f.name, "blob")
		} else {
			w, err = mw.CreateFormField(f.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(w, f.value)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), &buf
}

func (c *client) postMultipart(path string, fields ...field) reply {
	c.t.Helper()
	ct, body := multipartBody(c.t, fields...)
	return c.do(http.MethodPost, path, ct, body)
}

// v2 dedicated helpers.

func (c *client) v2Init(mediaType string, total int, category string) string {
	c.t.Helper()
	body := fmt.Sprintf(`{"media_type":%q,"total_bytes":%d`, mediaType, total)
	if category != "" {
		body += fmt.Sprintf(`,"media_category":%q`, category)
	}
	r := c.postJSON("/2/media/upload/initialize", body+"}")
	if r.status != http.StatusOK {
		c.t.Fatalf("initialize: %s", r)
	}
	return r.data(c.t)["id"].(string)
}

func (c *client) v2Append(id string, idx int, data []byte) reply {
	c.t.Helper()
	return c.postMultipart("/2/media/upload/"+id+"/append",
		field{name: "segment_index", value: fmt.Sprint(idx)}, field{name: "media", value: string(data), file: true})
}

func (c *client) v2Finalize(id string) reply {
	c.t.Helper()
	return c.do(http.MethodPost, "/2/media/upload/"+id+"/finalize", "", nil)
}

func (c *client) v2Status(id string) reply {
	c.t.Helper()
	return c.do(http.MethodGet, "/2/media/upload?command=STATUS&media_id="+id, "", nil)
}

// upload runs initialize, one APPEND per chunk and finalize on the v2
// dedicated endpoints, and returns the id and the FINALIZE answer.
func (c *client) upload(mediaType, category string, chunks ...[]byte) (string, reply) {
	c.t.Helper()
	total := 0
	for _, ch := range chunks {
		total += len(ch)
	}
	id := c.v2Init(mediaType, total, category)
	for i, ch := range chunks {
		if r := c.v2Append(id, i, ch); r.status != http.StatusOK {
			c.t.Fatalf("append %d: %s", i, r)
		}
	}
	return id, c.v2Finalize(id)
}

// Sample media: valid leading bytes followed by deterministic filler.

func filler(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

func withHead(head []byte, n int) []byte {
	b := filler(n, uint64(n))
	copy(b, head)
	return b
}

func mp4(n int) []byte { return withHead([]byte("\x00\x00\x00\x18ftypmp42"), n) }

func png(w, h uint32, n int) []byte {
	head := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
	head = binary.BigEndian.AppendUint32(head, w)
	head = binary.BigEndian.AppendUint32(head, h)
	return withHead(head, n)
}

func gif(w, h uint16, n int) []byte {
	head := []byte("GIF89a")
	head = binary.LittleEndian.AppendUint16(head, w)
	head = binary.LittleEndian.AppendUint16(head, h)
	return withHead(head, n)
}

func jpeg(n int) []byte { return withHead([]byte("\xff\xd8\xff\xe0"), n) }

// fakeClock is an injectable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Unix(1_750_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// shape reduces a JSON value to its structure: objects keep their keys,
// arrays their first element, scalars become their type name.
func shape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			m[k] = shape(e)
		}
		return m
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		return []any{shape(x[0])}
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	}
	return "null"
}

func shapeOf(t testing.TB, body []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("not JSON: %q: %v", body, err)
	}
	return shape(v)
}

// sameShape fails t unless got and want (JSON texts) have the same shape.
func sameShape(t testing.TB, got []byte, want string) {
	t.Helper()
	g, w := shapeOf(t, got), shapeOf(t, []byte(want))
	if !reflect.DeepEqual(g, w) {
		t.Errorf("shape mismatch\n got: %s\nwant: %s", got, want)
	}
}

// sameJSON fails t unless got and want are equal JSON values.
func sameJSON(t testing.TB, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("not JSON: %q", got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %q", want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body mismatch\n got: %s\nwant: %s", got, want)
	}
}

func wantStatus(t testing.TB, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status: got %s, want %d", r, status)
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
