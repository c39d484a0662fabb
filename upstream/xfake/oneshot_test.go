package xfake_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/mediagw/mediagw/upstream/xfake"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestV11SimpleUpload: a POST with only media (or media_data) is X's simple
// upload: 200 with size and image, no media_key without a category (v1_07).
func TestV11SimpleUpload(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{}).as(oauthHeader("tok"))

	data := gif(320, 240, 5000)
	r := c.postMultipart(v11, field{name: "media", value: string(data), file: true})
	wantStatus(t, r, http.StatusOK)
	sameShape(t, r.body, rec(t, "v1 simple upload"))
	o := r.obj(t)
	id := o["media_id_string"].(string)
	if o["size"] != float64(5000) || o["expires_after_secs"] != float64(86400) {
		t.Errorf("simple upload %s", r)
	}
	sameJSON(t, mustJSON(t, o["image"]), `{"image_type":"image/gif","w":320,"h":240}`)
	if ct := r.header.Get("Content-Type"); ct != "application/json;charset=utf-8" {
		t.Errorf("content-type %q", ct)
	}
	if got := r.header.Get("x-rate-limit-limit"); got != "415" {
		t.Errorf("x-rate-limit-limit %q, want 415 (v1_07)", got)
	}
	if got := r.header.Get("x-mediaid"); got != "" {
		t.Errorf("x-mediaid %q on a simple upload (v1_07 has none)", got)
	}
	info := c.srv.Media(t, id)
	if info.SHA256 != sha(data) || info.State != "succeeded" || info.Processing || info.MediaType != "image/gif" {
		t.Errorf("inspection %+v", info)
	}
	// Never processed: STATUS is 404 as for any synchronous media.
	wantStatus(t, c.do(http.MethodGet, v11+"?command=STATUS&media_id="+id, "", nil), http.StatusNotFound)

	// media_data (base64) in a multipart body, and in a urlencoded one.
	pic := png(64, 32, 3000)
	r = c.postMultipart(v11, field{name: "media_data", value: base64.StdEncoding.EncodeToString(pic)})
	wantStatus(t, r, http.StatusOK)
	sameJSON(t, mustJSON(t, r.obj(t)["image"]), `{"image_type":"image/png","w":64,"h":32}`)
	if info := c.srv.Media(t, r.obj(t)["media_id_string"].(string)); info.SHA256 != sha(pic) {
		t.Errorf("media_data sha256 %s", info.SHA256)
	}
	r = c.postForm(v11, url.Values{"media_data": {base64.StdEncoding.EncodeToString(pic)}})
	wantStatus(t, r, http.StatusOK)

	// With a category (either spelling): media_key, still synchronous.
	r = c.postMultipart(v11, field{name: "media_category", value: "TweetImage"}, field{name: "media", value: string(jpeg(900)), file: true})
	wantStatus(t, r, http.StatusOK)
	if o := r.obj(t); o["media_key"] != "3_"+o["media_id_string"].(string) || o["processing_info"] != nil {
		t.Errorf("with category %s", r)
	}
	r = c.postMultipart(v11, field{name: "media_category", value: "tweet_gif"}, field{name: "media", value: string(data), file: true})
	wantStatus(t, r, http.StatusOK)
	if o := r.obj(t); o["media_key"] != "16_"+o["media_id_string"].(string) || o["processing_info"] != nil {
		t.Errorf("gif with category %s", r)
	}

	// A video is not an image: "media type unrecognized." (v1_08).
	r = c.postMultipart(v11, field{name: "media_data", value: base64.StdEncoding.EncodeToString(mp4(2000))})
	wantStatus(t, r, http.StatusBadRequest)
	sameJSON(t, r.body, rec(t, "v1 request error"))
	r = c.postMultipart(v11, field{name: "media_category", value: "Tweet_Image"}, field{name: "media", value: string(pic), file: true})
	wantStatus(t, r, http.StatusBadRequest)
	sameJSON(t, r.body, `{"request":"/1.1/media/upload.json","error":"Invalid media_category."}`)
	r = c.postMultipart(v11, field{name: "media", value: "", file: true})
	sameJSON(t, r.body, `{"errors":[{"code":38,"message":"media parameter is missing."}]}`)
	badBody := `{"request":"/1.1/media/upload.json","error":"Invalid request body."}`
	r = c.postMultipart(v11, field{name: "media_data", value: "not base64!"})
	wantStatus(t, r, http.StatusBadRequest)
	sameJSON(t, r.body, badBody)
	r = c.postMultipart(v11, field{name: "media", value: string(pic), file: true}, field{name: "media_data", value: "eA=="})
	wantStatus(t, r, http.StatusBadRequest)
	sameJSON(t, r.body, badBody)
	// Bodies that are not a well-formed form never reach the upload.
	if st := c.srv.X.Stats(); st.Requests["v1.1-upload"] != 8 || st.Requests["v1.1"] != 2 {
		t.Errorf("requests %v, want v1.1-upload 8 and v1.1 2", st.Requests)
	}

	// Only OAuth 1.0a, as everywhere on v1.1.
	r = c.as("Bearer T").postMultipart(v11, field{name: "media", value: string(pic), file: true})
	wantStatus(t, r, http.StatusForbidden)
}

func TestV11SimpleUploadSizes(t *testing.T) {
	t.Parallel()
	// Over MaxSegment the edge refuses the body: 413, empty.
	c := newClient(t, xfake.Options{}).as(oauthHeader("tok"))
	r := c.postMultipart(v11, field{name: "media", value: string(png(8, 8, 5<<20+1)), file: true})
	wantStatus(t, r, http.StatusRequestEntityTooLarge)
	if len(r.body) != 0 {
		t.Errorf("413 body %q", r.body)
	}
	// Under it, an image over 5 MiB is X's file-size error; a GIF too, even
	// with a category (15 MB GIFs need the chunked path).
	c = newClient(t, xfake.Options{MaxSegment: 6 << 20}).as(oauthHeader("tok"))
	for _, fields := range [][]field{
		{{name: "media", value: string(png(8, 8, 5<<20+1)), file: true}},
		{{name: "media_category", value: "tweet_gif"}, {name: "media", value: string(gif(8, 8, 5<<20+1)), file: true}},
	} {
		r = c.postMultipart(v11, fields...)
		wantStatus(t, r, http.StatusBadRequest)
		sameJSON(t, r.body, `{"request":"/1.1/media/upload.json","error":"File size exceeds 5242880 bytes."}`)
	}
	wantStatus(t, c.postMultipart(v11, field{name: "media", value: string(png(8, 8, 5<<20)), file: true}), http.StatusOK)
}

// TestV2OneShot: POST /2/media/upload with media and media_category and no
// command (MediaUploadRequestOneShot): 200 with the synchronous FINALIZE body.
func TestV2OneShot(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{})
	const path = "/2/media/upload"

	pic := png(100, 50, 4000)
	r := c.postMultipart(path, field{name: "media_category", value: "tweet_image"}, field{name: "media", value: string(pic), file: true})
	wantStatus(t, r, http.StatusOK)
	sameShape(t, r.body, rec(t, "v2 FINALIZE image"))
	d := r.data(t)
	id := d["id"].(string)
	if d["media_key"] != "3_"+id || d["size"] != float64(4000) || d["expires_after_secs"] != float64(86400) {
		t.Errorf("one-shot %s", r)
	}
	sameJSON(t, mustJSON(t, d["image"]), `{"image_type":"image/png","w":100,"h":50}`)
	if got := r.header.Get("x-rate-limit-limit"); got != "500" {
		t.Errorf("x-rate-limit-limit %q, want 500", got)
	}
	if info := c.srv.Media(t, id); info.SHA256 != sha(pic) || info.State != "succeeded" || info.MediaCategory != "tweet_image" {
		t.Errorf("inspection %+v", info)
	}
	// Never processed: STATUS is "BadRequest: Not found" (v2_07).
	r = c.v2Status(id)
	wantStatus(t, r, http.StatusBadRequest)
	sameJSON(t, r.body, rec(t, "v2 STATUS not found"))

	// JSON with base64 media.
	jp := jpeg(3000)
	r = c.postJSON(path, `{"media":"`+base64.StdEncoding.EncodeToString(jp)+`","media_category":"dm_image","media_type":"image/jpeg","shared":true}`)
	wantStatus(t, r, http.StatusOK)
	if info := c.srv.Media(t, r.data(t)["id"].(string)); info.SHA256 != sha(jp) || info.MediaType != "image/jpeg" {
		t.Errorf("JSON one-shot %+v", info)
	}
	// Subtitles: SubRip has no magic number, WebVTT has.
	srt := "1\n00:00:01,000 --> 00:00:02,000\nHello\n"
	r = c.postMultipart(path, field{name: "media_category", value: "subtitles"}, field{name: "media", value: srt, file: true})
	wantStatus(t, r, http.StatusOK)
	if d := r.data(t); d["image"] != nil || c.srv.Media(t, d["id"].(string)).MediaType != "text/srt" {
		t.Errorf("srt %s", r)
	}
	r = c.postMultipart(path, field{name: "media_category", value: "subtitles"}, field{name: "media", value: "WEBVTT\n\n00:01.000 --> 00:02.000\nHi\n", file: true})
	wantStatus(t, r, http.StatusOK)
	if c.srv.Media(t, r.data(t)["id"].(string)).MediaType != "text/vtt" {
		t.Errorf("vtt %s", r)
	}
	if st := c.srv.X.Stats(); st.Requests["upload"] != 4 {
		t.Errorf("upload requests %d, want 4", st.Requests["upload"])
	}
}

func TestV2OneShotErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newClient(t, xfake.Options{SpillDir: dir})
	const path = "/2/media/upload"
	pic := string(png(8, 8, 500))
	media := field{name: "media", value: pic, file: true}
	cat := func(v string) field { return field{name: "media_category", value: v} }

	sameJSON(t, c.postMultipart(path, media).body, `{"errors":[{"code":38,"message":"media_category parameter is missing."}]}`)
	invalid(t, c.postMultipart(path, cat("tweet_video"), media),
		"$.media_category: does not have a value in the enumeration [tweet_image, dm_image, subtitles]")
	// v2 takes the snake_case names only.
	invalid(t, c.postMultipart(path, cat("TweetImage"), media),
		"$.media_category: does not have a value in the enumeration [tweet_image, dm_image, subtitles]")
	invalid(t, c.postMultipart(path, cat("tweet_image"), field{name: "media_type", value: "image/gif"}, media),
		"$.media_type: does not have a value in the enumeration [text/srt, text/vtt, image/jpeg, image/bmp, image/png, image/webp, image/pjpeg, image/tiff]")
	// Bytes that are not what the request says.
	invalid(t, c.postMultipart(path, cat("tweet_image"), field{name: "media", value: string(gif(8, 8, 500)), file: true}), "InvalidMedia")
	invalid(t, c.postMultipart(path, cat("tweet_image"), field{name: "media_type", value: "image/jpeg"}, media), "InvalidMedia")
	invalid(t, c.postMultipart(path, cat("tweet_image"), field{name: "media", value: string(mp4(500)), file: true}), "InvalidMedia")
	invalid(t, c.postMultipart(path, cat("subtitles"), media), "InvalidMedia")
	invalid(t, c.postMultipart(path, cat("subtitles"), field{name: "media_type", value: "text/vtt"}, field{name: "media", value: "1\n", file: true}), "InvalidMedia")
	invalid(t, c.postMultipart(path, cat("tweet_image"), field{name: "media_type", value: "text/srt"}, media), "InvalidMedia")
	invalid(t, c.postMultipart(path, cat("tweet_image"), field{name: "additional_owners", value: "12,x"}, media),
		"$.additional_owners: does not match the regex pattern ^[0-9]{1,19}$")

	// JSON: without media it is code 38 (v2_09); the rest is schema-checked.
	b64 := base64.StdEncoding.EncodeToString([]byte(pic))
	sameJSON(t, c.postJSON(path, `{"media_category":"tweet_image"}`).body, rec(t, "v2 cmd JSON body"))
	invalid(t, c.postJSON(path, `{"media":"`+b64+`","command":"INIT"}`),
		"$.command: is not defined in the schema and the schema does not allow additional properties",
		"$.media_category: is missing but it is required")
	invalid(t, c.postJSON(path, `{"media":"`+b64+`","media_category":"tweet_image","shared":"yes"}`),
		"$.shared: string found, boolean expected")
	invalid(t, c.postJSON(path, `{"media":7,"media_category":"tweet_image"}`), "$.media: integer found, string expected")
	invalid(t, c.postJSON(path, `{"media":"!!!","media_category":"tweet_image"}`), "$.media: is not a valid base64 string")
	invalid(t, c.postJSON(path, `{"media":"`+b64+`"`), "Request body is not valid JSON.")
	if st := c.srv.X.Stats(); st.Requests["upload"] == 0 {
		t.Errorf("one-shot requests not counted: %v", st.Requests)
	}
	// Nothing of a refused upload is kept.
	if n := spilledFiles(t, dir); n != 0 {
		t.Errorf("%d spilled files kept after refused uploads", n)
	}
}

// spilledFiles counts the files left under an emulator's SpillDir.
func spilledFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	if v == nil {
		t.Fatal("missing JSON value")
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
