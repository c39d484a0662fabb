package xfake_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

func TestV2DedicatedAsyncFlow(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := newClient(t, xfake.Options{Now: clk.Now, ProcessingTime: 10 * time.Second})
	data := mp4(3000)
	id := c.v2Init("video/mp4", len(data), "tweet_video")

	app := c.v2Append(id, 1, data[1000:])
	wantStatus(t, app, http.StatusOK)
	sameShape(t, app.body, rec(t, "v2 APPEND"))
	exp := int64(app.data(t)["expires_at"].(float64))
	if want := clk.Now().Add(24 * time.Hour).UnixMilli(); exp != want {
		t.Errorf("expires_at = %d, want %d (epoch ms of session expiry)", exp, want)
	}
	wantStatus(t, c.v2Append(id, 0, data[:1000]), http.StatusOK)

	fin := c.v2Finalize(id)
	wantStatus(t, fin, http.StatusOK)
	sameShape(t, fin.body, rec(t, "v2 FINALIZE pending"))
	d := fin.data(t)
	if d["media_key"] != "7_"+id || d["size"] != float64(3000) || d["expires_after_secs"] != float64(86400) {
		t.Errorf("finalize data = %v", d)
	}
	pi := d["processing_info"].(map[string]any)
	if pi["state"] != "pending" || pi["check_after_secs"] != float64(1) {
		t.Errorf("processing_info = %v", pi)
	}

	steps := []struct {
		advance time.Duration
		state   string
		pct     float64
	}{
		{0, "pending", 0},
		{5 * time.Second, "in_progress", 50},
		{3 * time.Second, "in_progress", 80},
		{2 * time.Second, "succeeded", 100},
	}
	for _, s := range steps {
		clk.Add(s.advance)
		st := c.v2Status(id)
		wantStatus(t, st, http.StatusOK)
		pi := st.data(t)["processing_info"].(map[string]any)
		if pi["state"] != s.state || (s.pct > 0 && pi["progress_percent"] != s.pct) {
			t.Errorf("after +%v: processing_info = %v, want %s %v%%", s.advance, pi, s.state, s.pct)
		}
		if s.state == "succeeded" {
			sameShape(t, st.body, rec(t, "v2 STATUS succeeded"))
		}
	}
	// command is optional on STATUS.
	wantStatus(t, c.do(http.MethodGet, "/2/media/upload?media_id="+id, "", nil), http.StatusOK)

	info := c.srv.Media(t, id)
	sum := sha256.Sum256(data)
	if info.SHA256 != hex.EncodeToString(sum[:]) || info.Segments != 2 || info.Size != 3000 ||
		info.State != "succeeded" || info.AppendRequests != 2 || info.FinalizedAt.IsZero() {
		t.Errorf("inspection = %+v", info)
	}
}

func TestV2MediaKeyPrefixes(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{})
	cases := []struct{ mediaType, category, prefix string }{
		{"video/mp4", "tweet_video", "7_"},
		{"video/mp4", "dm_video", "7_"},
		{"video/mp4", "amplify_video", "13_"},
		{"image/gif", "tweet_gif", "16_"},
		{"image/gif", "dm_gif", "16_"},
		{"image/gif", "", "16_"},
		{"image/png", "tweet_image", "3_"},
		{"image/jpeg", "", "3_"},
		{"video/mp4", "", "7_"},
	}
	for _, tc := range cases {
		r := c.postJSON("/2/media/upload/initialize",
			`{"media_type":"`+tc.mediaType+`","total_bytes":10`+
				map[bool]string{true: `,"media_category":"` + tc.category + `"`}[tc.category != ""]+`}`)
		wantStatus(t, r, http.StatusOK)
		sameShape(t, r.body, rec(t, "v2 cmd INIT"))
		d := r.data(t)
		if d["media_key"] != tc.prefix+d["id"].(string) || d["expires_after_secs"] != float64(86400) {
			t.Errorf("%s/%s: %v", tc.mediaType, tc.category, d)
		}
	}
}

func TestV2SyncImage(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{})
	id, fin := c.upload("image/png", "tweet_image", png(640, 480, 2000))
	wantStatus(t, fin, http.StatusOK)
	sameShape(t, fin.body, rec(t, "v2 FINALIZE image"))
	img := fin.data(t)["image"].(map[string]any)
	if img["image_type"] != "image/png" || img["w"] != float64(640) || img["h"] != float64(480) {
		t.Errorf("image = %v", img)
	}
	st := c.v2Status(id)
	wantStatus(t, st, http.StatusBadRequest)
	sameJSON(t, st.body, rec(t, "v2 STATUS not found"))
	if ct := st.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("content-type %q", ct)
	}
	if info := c.srv.Media(t, id); info.State != "succeeded" || info.Processing {
		t.Errorf("inspection = %+v", info)
	}

	_, fin = c.upload("image/jpeg", "", jpeg(500))
	wantStatus(t, fin, http.StatusOK)
	if img := fin.data(t)["image"].(map[string]any); img["w"] != float64(0) || img["image_type"] != "image/jpeg" {
		t.Errorf("jpeg image = %v", img)
	}
	_, fin = c.upload("image/gif", "", gif(320, 240, 700))
	if img := fin.data(t)["image"].(map[string]any); img["w"] != float64(320) || img["h"] != float64(240) {
		t.Errorf("gif image = %v", img)
	}
	_, fin = c.upload("video/mp4", "", mp4(700))
	if v := fin.data(t)["video"].(map[string]any); v["video_type"] != "video/mp4" {
		t.Errorf("sync video = %s", fin)
	}
}

// invalid checks a v2 invalid-request answer carrying exactly msgs.
func invalid(t *testing.T, r reply, msgs ...string) {
	t.Helper()
	wantStatus(t, r, http.StatusBadRequest)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("content-type %q", ct)
	}
	sameShape(t, r.body, rec(t, "v2 invalid JSON"))
	var got []string
	for _, e := range r.obj(t)["errors"].([]any) {
		got = append(got, e.(map[string]any)["message"].(string))
	}
	if strings.Join(got, "|") != strings.Join(msgs, "|") {
		t.Errorf("messages = %q, want %q", got, msgs)
	}
}

func TestV2InitValidation(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{})
	const enumTypes = "$.media_type: does not have a value in the enumeration [video/mp4, video/webm, video/mp2t, video/quicktime, text/srt, text/vtt, image/jpeg, image/gif, image/bmp, image/png, image/webp, image/pjpeg, image/tiff, model/gltf-binary, model/vnd.usdz+zip]"
	cases := []struct {
		name, body string
		msgs       []string
	}{
		{"unknown field", `{"media_type":"video/mp4","total_bytes":10,"foo":1}`,
			[]string{"$.foo: is not defined in the schema and the schema does not allow additional properties"}},
		{"not JSON", `media_type=video/mp4&total_bytes=10`, []string{"Request body is not valid JSON."}},
		{"truncated", `{"media_type":"video/mp4"`, []string{"Request body is not valid JSON."}},
		{"trailing", `{"media_type":"video/mp4","total_bytes":1} x`, []string{"Request body is not valid JSON."}},
		{"empty", ``, []string{"Request body must be a JSON object."}},
		{"array", `[1]`, []string{"Request body must be a JSON object."}},
		{"bad type", `{"media_type":"video/avi","total_bytes":10}`, []string{enumTypes}},
		{"type not string", `{"media_type":5,"total_bytes":10}`, []string{"$.media_type: integer found, string expected"}},
		{"bad category", `{"media_type":"video/mp4","total_bytes":10,"media_category":"tweet_audio"}`,
			[]string{"$.media_category: does not have a value in the enumeration [amplify_video, tweet_gif, tweet_image, tweet_video, dm_gif, dm_image, dm_video, subtitles]"}},
		{"zero bytes", `{"media_type":"video/mp4","total_bytes":0}`, []string{"$.total_bytes: must have a minimum value of 1"}},
		{"too many bytes", `{"media_type":"video/mp4","total_bytes":17179869185}`, []string{"$.total_bytes: must have a maximum value of 17179869184"}},
		{"bytes as string", `{"media_type":"video/mp4","total_bytes":"10"}`, []string{"$.total_bytes: string found, integer expected"}},
		{"bytes fraction", `{"media_type":"video/mp4","total_bytes":1.5}`, []string{"$.total_bytes: number found, integer expected"}},
		{"no total", `{"media_type":"video/mp4"}`, []string{"$.total_bytes: is missing but it is required"}},
		{"no type", `{"total_bytes":10}`, []string{"$.media_type: is missing but it is required"}},
		{"bad owner", `{"media_type":"video/mp4","total_bytes":10,"additional_owners":["x1"]}`,
			[]string{"$.additional_owners[0]: does not match the regex pattern ^[0-9]{1,19}$"}},
		{"bad shared", `{"media_type":"video/mp4","total_bytes":10,"shared":"yes"}`, []string{"$.shared: string found, boolean expected"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			invalid(t, c.postJSON("/2/media/upload/initialize", tc.body), tc.msgs...)
		})
	}
	ok := c.postJSON("/2/media/upload/initialize",
		`{"media_type":"video/mp4","total_bytes":17179869184,"media_category":"amplify_video","additional_owners":["2244994945"],"shared":true}`)
	wantStatus(t, ok, http.StatusOK)
	invalid(t, c.postJSON("/2/media/upload/initialize", `media_type=video/mp4`), "Request body is not valid JSON.")
	sameJSON(t, c.postJSON("/2/media/upload/initialize", `nope`).body, rec(t, "v2 invalid JSON"))
}

func TestV2AppendValidation(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{MaxSegment: 1024})
	id := c.v2Init("video/mp4", 5000, "tweet_video")
	path := "/2/media/upload/" + id + "/append"
	const segMsg = "SegmentIndex must be between 0 and 999."
	invalid(t, c.v2Append(id, 1000, []byte("x")), segMsg)
	invalid(t, c.v2Append(id, -1, []byte("x")), segMsg)
	invalid(t, c.postMultipart(path, field{name: "segment_index", value: "abc"}, field{name: "media", value: "x", file: true}),
		"$.segment_index: does not match the regex pattern ^[0-9]{1,3}$")
	invalid(t, c.postMultipart(path, field{name: "media", value: "x", file: true}), "$.segment_index: is missing but it is required")
	invalid(t, c.postMultipart(path, field{name: "segment_index", value: "0"}), "$.media: is missing but it is required")
	invalid(t, c.postJSON(path, `{"media":"eA==","segment_index":0,"command":"APPEND"}`),
		"$.command: is not defined in the schema and the schema does not allow additional properties")
	invalid(t, c.postJSON(path, `{"media":"!!!","segment_index":0}`), "$.media: is not a valid base64 string")
	invalid(t, c.postJSON(path, `{"media":"eA==","segment_index":1000}`), segMsg)
	invalid(t, c.postJSON(path, `{"media":"eA==","segment_index":"1000"}`), segMsg)
	invalid(t, c.postJSON(path, `{"media":7,"segment_index":0}`), "$.media: integer found, string expected")
	invalid(t, c.postJSON(path, `{"segment_index":0}`), "$.media: is missing but it is required")
	invalid(t, c.postJSON(path, `{"media":"eA==","segment_index":0`), "Request body is not valid JSON.")

	// 413 with an empty body over MaxSegment, multipart and JSON alike.
	big := c.v2Append(id, 0, make([]byte, 1025))
	wantStatus(t, big, http.StatusRequestEntityTooLarge)
	if len(big.body) != 0 {
		t.Errorf("413 body = %q, want empty", big.body)
	}
	bigJSON := c.postJSON(path, `{"media":"`+strings.Repeat("AAAA", 342)+`","segment_index":0}`)
	wantStatus(t, bigJSON, http.StatusRequestEntityTooLarge)
	if len(bigJSON.body) != 0 {
		t.Errorf("413 body = %q", bigJSON.body)
	}
	wantStatus(t, c.v2Append(id, 0, make([]byte, 1024)), http.StatusOK)
	// JSON append: segment_index as a string, escaped slashes in base64.
	wantStatus(t, c.postJSON(path, `{"segment_index":"1","media":"\/\/\/\/"}`), http.StatusOK)

	invalid(t, c.v2Append("1234567890123456789", 0, []byte("x")), "BadRequest: Not found")
	invalid(t, c.v2Append("abc", 0, []byte("x")), "$.id: does not match the regex pattern ^[0-9]{1,19}$")

	info := c.srv.Media(t, id)
	if info.Segments != 2 || info.Size != 1024+3 || info.State != "uploading" {
		t.Errorf("inspection = %+v", info)
	}
}

func TestV2FinalizeValidation(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{})
	const segMsg = "Segments do not add up to provided total file size."
	cases := []struct {
		name  string
		total int
		segs  map[int]int
	}{
		{"gap", 30, map[int]int{0: 10, 2: 20}},
		{"short", 30, map[int]int{0: 10, 1: 10}},
		{"long", 30, map[int]int{0: 20, 1: 20}},
		{"none", 30, nil},
		{"not from zero", 20, map[int]int{1: 20}},
	}
	for _, tc := range cases {
		id := c.v2Init("video/mp4", tc.total, "tweet_video")
		for i, n := range tc.segs {
			wantStatus(t, c.v2Append(id, i, mp4(n)), http.StatusOK)
		}
		t.Run(tc.name, func(t *testing.T) { invalid(t, c.v2Finalize(id), segMsg) })
	}
	// A re-sent segment replaces the first: sizes then add up.
	id := c.v2Init("video/mp4", 30, "tweet_video")
	wantStatus(t, c.v2Append(id, 0, mp4(25)), http.StatusOK)
	wantStatus(t, c.v2Append(id, 1, mp4(10)), http.StatusOK)
	wantStatus(t, c.v2Append(id, 0, mp4(20)), http.StatusOK)
	wantStatus(t, c.v2Finalize(id), http.StatusOK)
	invalid(t, c.v2Finalize(id), "BadRequest: Media already finalized")
	invalid(t, c.v2Append(id, 2, []byte("x")), "BadRequest: Media already finalized")
	invalid(t, c.v2Finalize("1234567890123456789"), "BadRequest: Not found")
	if info := c.srv.Media(t, id); info.AppendRequests != 3 || info.Segments != 2 {
		t.Errorf("inspection = %+v", info)
	}
}

func TestV2StatusValidation(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{})
	invalid(t, c.do(http.MethodGet, "/2/media/upload?command=STATUS", "", nil), "$.media_id: is missing but it is required")
	invalid(t, c.v2Status("1234567890123456789"), "BadRequest: Not found")
	id := c.v2Init("video/mp4", 10, "tweet_video")
	invalid(t, c.v2Status(id), "BadRequest: Not found") // not finalized: never processed yet
	invalid(t, c.do(http.MethodGet, "/2/media/upload?command=INIT&media_id="+id, "", nil),
		"$.command: does not have a value in the enumeration [STATUS]")
}
