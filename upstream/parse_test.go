package upstream

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
)

var t0 = time.Unix(1_750_000_000, 0)

func TestParseRecordedMedia(t *testing.T) {
	t.Parallel()
	all := loadRecorded(t)
	cases := []struct {
		prefix   string
		block    int
		id, key  string
		size     int64
		expires  int64
		state    string
		check    int
		progress int
		procErr  *ProcessingError
	}{
		{prefix: "v1_01", id: "1349803915521482754", expires: 86400},
		{prefix: "v1_02"},
		{prefix: "v1_03"},
		{prefix: "v1_04", id: "1349803915521482754", size: 1577963, expires: 86400},
		{prefix: "v1_05", id: "1302644179944734720", key: "7_1302644179944734720", expires: 86399},
		{prefix: "v1_06", id: "1302644179944734720", key: "7_1302644179944734720", size: 1577963, expires: 86400, state: "pending", check: 1},
		{prefix: "v1_07", id: "1349010951484399617", size: 1021636, expires: 86400},
		{prefix: "v1_09", id: "1187325998846660609", key: "7_1187325998846660609", size: 8795782, state: "failed", progress: 100,
			procErr: &ProcessingError{Code: 1, Name: "InvalidMedia", Message: "file is invalid"}},
		{prefix: "v1_11", id: "1682626180757979138", key: "7_1682626180757979138", size: 3740488, state: "in_progress", progress: 99,
			procErr: &ProcessingError{Code: 1, Name: "InvalidMedia", Message: "file is invalid"}},
		{prefix: "v2_01", id: "1912475018862166016", key: "16_1912475018862166016", expires: 86400},
		{prefix: "v2_02"},
		{prefix: "v2_03", id: "1912475018862166016", key: "16_1912475018862166016", size: 708679, expires: 86400, state: "pending", check: 1},
		{prefix: "v2_04", id: "1912475018862166016", key: "16_1912475018862166016", size: 708679, expires: 86398, state: "succeeded", progress: 100},
		{prefix: "v2_05"},
		{prefix: "v2_06", id: "1959975206895702016", key: "13_1959975206895702016", size: 120531, expires: 1296000, state: "pending", check: 1},
		{prefix: "v2_07", id: "1900544781383569409", key: "3_1900544781383569409", size: 117807, expires: 86400},
	}
	for _, tc := range cases {
		rec := findRecorded(t, all, tc.prefix)
		var body string
		if tc.block < len(rec.bodies) {
			body = rec.bodies[tc.block]
		}
		m, err := parseMedia([]byte(body), t0)
		if err != nil {
			t.Errorf("%s: %v", rec.name, err)
			continue
		}
		if m.ID != tc.id || m.Key != tc.key || m.Size != tc.size || m.ExpiresAfterSecs != tc.expires {
			t.Errorf("%s: got id=%q key=%q size=%d expires=%d", rec.name, m.ID, m.Key, m.Size, m.ExpiresAfterSecs)
		}
		if tc.state == "" {
			if m.Processing != nil {
				t.Errorf("%s: unexpected processing %+v", rec.name, m.Processing)
			}
			continue
		}
		p := m.Processing
		if p == nil || p.State != tc.state || p.CheckAfterSecs != tc.check || p.ProgressPercent != tc.progress {
			t.Errorf("%s: processing = %+v", rec.name, p)
			continue
		}
		if (tc.procErr == nil) != (p.Error == nil) || (p.Error != nil && *p.Error != *tc.procErr) {
			t.Errorf("%s: processing error = %+v, want %+v", rec.name, p.Error, tc.procErr)
		}
	}
	// v2_05: expires_at in milliseconds.
	m, _ := parseMedia([]byte(findRecorded(t, all, "v2_05").bodies[0]), t0)
	if !m.ExpiresAt.Equal(time.UnixMilli(1749908627578)) {
		t.Errorf("v2_05 expires_at = %v", m.ExpiresAt)
	}
}

func TestParseRecordedErrors(t *testing.T) {
	t.Parallel()
	all := loadRecorded(t)
	cases := []struct {
		prefix string
		block  int
		status int
		code   int
		detail string
		typ    string
	}{
		{prefix: "v1_08", status: 400, detail: "media type unrecognized."},
		{prefix: "v2_07", block: 1, status: 400, detail: "BadRequest: Not found", typ: "https://api.twitter.com/2/problems/invalid-request"},
		{prefix: "v2_08", status: 403, detail: "Forbidden", typ: "about:blank"},
		{prefix: "v2_09", status: 400, code: 38, detail: "media parameter is missing."},
		{prefix: "v2_10", status: 400, detail: "Request body is not valid JSON.", typ: "https://api.twitter.com/2/problems/invalid-request"},
		{prefix: "v2_11", status: 429, detail: "Too Many Requests", typ: "about:blank"},
	}
	for _, tc := range cases {
		rec := findRecorded(t, all, tc.prefix)
		status := rec.status
		if status == 0 {
			status = tc.status
		}
		e := parseAPIError(status, rec.header, []byte(rec.bodies[tc.block]), t0)
		if e.HTTPStatus != tc.status || e.Code != tc.code || e.Detail != tc.detail || e.Type != tc.typ {
			t.Errorf("%s: got %+v", rec.name, e)
		}
	}
	if !notFound(parseAPIError(400, nil, []byte(findRecorded(t, all, "v2_07").bodies[1]), t0)) {
		t.Error("v2_07 STATUS answer not recognised as not found")
	}
}

func TestParseRecordedRateLimitHeaders(t *testing.T) {
	t.Parallel()
	all := loadRecorded(t)
	rec := findRecorded(t, all, "v1_01")
	var b budget
	b.observe(rec.header)
	if !b.known || b.limit != 200 || b.remaining != 196 || !b.reset.Equal(time.Unix(1610654844, 0)) {
		t.Fatalf("budget after v1_01 = %+v", &b)
	}
	// v2_08 has no x-rate-limit headers: nothing is learnt.
	var b2 budget
	b2.observe(findRecorded(t, all, "v2_08").header)
	if b2.known {
		t.Fatal("budget learnt from a response without rate-limit headers")
	}
}

func TestParseShapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		body    string
		id      string
		expires time.Time
	}{
		{"id as big number", `{"data":{"id":1912475018862166017}}`, "1912475018862166017", time.Time{}},
		{"media_id number only", `{"media_id":9007199254740993}`, "9007199254740993", time.Time{}},
		{"media_id_string preferred", `{"media_id":1.5e3,"media_id_string":"1500"}`, "1500", time.Time{}},
		{"expires_at seconds", `{"data":{"expires_at":1749908627}}`, "", time.Unix(1749908627, 0)},
		{"expires_at as string", `{"data":{"expires_at":"1749908627578"}}`, "", time.UnixMilli(1749908627578)},
		{"unknown fields", `{"data":{"id":"5","video":{"video_type":"video/mp4"},"image":{"w":1}},"meta":{}}`, "5", time.Time{}},
		{"data null", `{"data":null,"media_id_string":"7"}`, "7", time.Time{}},
		{"wrong types tolerated", `{"data":{"id":"8","media_key":12,"size":"10","processing_info":{"state":3,"error":"bad"}}}`, "8", time.Time{}},
		{"empty", ``, "", time.Time{}},
		{"whitespace", " \n ", "", time.Time{}},
	}
	for _, tc := range cases {
		m, err := parseMedia([]byte(tc.body), t0)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if m.ID != tc.id || !m.ExpiresAt.Equal(tc.expires) {
			t.Errorf("%s: id=%q expiresAt=%v", tc.name, m.ID, m.ExpiresAt)
		}
	}
	if _, err := parseMedia([]byte("<html>oops</html>"), t0); err == nil {
		t.Error("HTML 2xx body accepted")
	}
}

func TestParseErrorShapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		status int
		header http.Header
		body   string
		code   int
		detail string
		retry  time.Duration
	}{
		{"errors as strings", 500, nil, `{"errors":["internal server error"]}`, 0, "internal server error", 0},
		{"v1.1 code 88", 429, http.Header{"X-Rate-Limit-Reset": {"1750000060"}}, `{"errors":[{"code":88,"message":"Rate limit exceeded"}]}`, 88, "Rate limit exceeded", time.Minute},
		{"already finalized v1.1", 400, nil, `{"errors":[{"code":324,"message":"Media id already finalized."}]}`, 324, "Media id already finalized.", 0},
		{"error object", 401, nil, `{"error":{"message":"nope"}}`, 0, "nope", 0},
		{"single errors object", 400, nil, `{"errors":{"code":"44","message":"x"}}`, 44, "x", 0},
		{"empty body 413", 413, nil, ``, 0, "", 0},
		{"html from proxy", 502, http.Header{"Retry-After": {"3"}}, "<html><head><title>502 Bad Gateway</title></head>\n<body>\x00\x01 nginx</body></html>", 0, "non-JSON body: 502 Bad Gateway nginx", 3 * time.Second},
		{"json array", 500, nil, `[1,2]`, 0, "non-JSON body: [1,2]", 0},
		{"problem only", 503, nil, `{"title":"Service Unavailable","detail":"Service Unavailable","type":"about:blank","status":503}`, 0, "Service Unavailable", 0},
	}
	for _, tc := range cases {
		h := tc.header
		if h == nil {
			h = http.Header{}
		}
		e := parseAPIError(tc.status, h, []byte(tc.body), t0)
		if e.Code != tc.code || e.Detail != tc.detail || e.RetryAfter != tc.retry {
			t.Errorf("%s: got code=%d detail=%q retry=%v", tc.name, e.Code, e.Detail, e.RetryAfter)
		}
		if e.StatusCode() != tc.status || e.RetryDelay() != tc.retry {
			t.Errorf("%s: StatusCode/RetryDelay = %d/%v", tc.name, e.StatusCode(), e.RetryDelay())
		}
		checkPrintable(t, e.Error())
	}
	long := parseAPIError(500, http.Header{}, []byte("<p>"+strings.Repeat("x", 10_000)+"</p>"), t0)
	if len(long.Detail) > maxSnippet+40 {
		t.Errorf("snippet not truncated: %d bytes", len(long.Detail))
	}
}

func TestScrubSecrets(t *testing.T) {
	t.Parallel()
	e := parseAPIError(401, http.Header{}, []byte(`{"detail":"token sekrit-token-123 is invalid"}`), t0)
	scrubAPIError(e, BearerToken("sekrit-token-123").secrets())
	if strings.Contains(e.Error(), "sekrit") {
		t.Fatalf("secret leaked: %s", e)
	}
}

func TestErrorInterfaces(t *testing.T) {
	t.Parallel()
	type invalid interface{ InvalidInput() bool }
	type status interface{ StatusCode() int }
	type retry interface{ RetryDelay() time.Duration }
	for _, s := range []error{ErrTooManyBytes, ErrShortUpload, ErrSegmentTooLarge, ErrInvalidParams} {
		var iv invalid
		if !errors.As(errors.Join(errors.New("ctx"), s), &iv) || !iv.InvalidInput() {
			t.Errorf("%v: no InvalidInput", s)
		}
	}
	rl := &RateLimitError{Command: "APPEND", Endpoint: "append", Reset: time.Now().Add(time.Hour), Err: &APIError{HTTPStatus: 429}}
	var st status
	var rt retry
	if !errors.As(rl, &st) || st.StatusCode() != 429 || !errors.As(rl, &rt) || rt.RetryDelay() < 59*time.Minute {
		t.Error("RateLimitError interfaces")
	}
	if !errors.Is(rl, ErrRateLimited) {
		t.Error("RateLimitError does not wrap ErrRateLimited")
	}
	var ae *APIError
	if !errors.As(rl, &ae) {
		t.Error("RateLimitError does not expose APIError")
	}
	pe := &ProcessingError{Code: 1, Name: "InvalidMedia", Message: "x"}
	var iv invalid
	if !errors.As(pe, &iv) || !iv.InvalidInput() || pe.ProcessingCode() != 1 || pe.ProcessingName() != "InvalidMedia" {
		t.Error("ProcessingError interfaces")
	}
}

func checkPrintable(t testing.TB, s string) {
	t.Helper()
	for _, r := range s {
		if r != '…' && (r > unicode.MaxASCII || !unicode.IsPrint(r)) {
			t.Fatalf("non-printable %q in %q", r, s)
		}
	}
}

func FuzzParseMedia(f *testing.F) {
	seedFromRecorded(f)
	f.Add([]byte(`{"data":{"id":1,"processing_info":{"state":"x","check_after_secs":-5,"progress_percent":1000}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseMedia(body, t0)
		if err != nil {
			checkPrintable(t, err.Error())
			return
		}
		if p := m.Processing; p != nil && (p.CheckAfterSecs < 0 || p.ProgressPercent < 0 || p.ProgressPercent > 100) {
			t.Fatalf("processing out of range: %+v", p)
		}
	})
}

func FuzzParseAPIError(f *testing.F) {
	seedFromRecorded(f)
	f.Add([]byte(`{"errors":["a",{"code":"x"},3,null],"error":{"message":7},"title":[]}`))
	f.Add([]byte("<html>\xff\xfe</html>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := parseAPIError(400, http.Header{"Retry-After": {string(body)}}, body, t0)
		s := e.Error()
		checkPrintable(t, s)
		if len(s) > 4096 {
			t.Fatalf("error text too long: %d", len(s))
		}
		_ = notFound(e)
		_ = alreadyFinalized(e)
	})
}

// seedFromRecorded adds every recorded body as a fuzz seed.
func seedFromRecorded(f *testing.F) {
	files, _ := readRecorded()
	for _, rec := range files {
		for _, b := range rec.bodies {
			f.Add([]byte(b))
		}
	}
	f.Add([]byte(`{"errors":["internal server error"]}`))
	f.Add([]byte(`{"data":{"expires_at":1749908627578}}`))
	f.Add([]byte{})
}
