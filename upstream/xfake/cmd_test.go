package xfake_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"testing"

	"github.com/mediagw/mediagw/upstream/xfake"
)

func TestCommandStyleFlow(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{})
	data := gif(32, 16, 2500)
	// INIT as multipart fields (SEED-QS).
	ini := c.postMultipart("/2/media/upload", field{name: "command", value: "INIT"},
		field{name: "media_type", value: "image/gif"}, field{name: "total_bytes", value: "2500"},
		field{name: "media_category", value: "tweet_gif"})
	wantStatus(t, ini, http.StatusAccepted)
	sameShape(t, ini.body, rec(t, "v2 cmd INIT"))
	id := ini.data(t)["id"].(string)
	if ini.data(t)["media_key"] != "16_"+id {
		t.Errorf("media_key %v", ini.data(t)["media_key"])
	}
	// APPEND with the media part before the fields, then with the fields in
	// the query string.
	app := c.postMultipart("/2/media/upload", field{name: "media", value: string(data[1000:]), file: true},
		field{name: "command", value: "APPEND"}, field{name: "media_id", value: id}, field{name: "segment_index", value: "1"})
	wantStatus(t, app, http.StatusNoContent)
	if len(app.body) != 0 {
		t.Errorf("APPEND body %q", app.body)
	}
	q := url.Values{"command": {"APPEND"}, "media_id": {id}, "segment_index": {"0"}}.Encode()
	wantStatus(t, c.postMultipart("/2/media/upload?"+q, field{name: "media", value: string(data[:1000]), file: true}), http.StatusNoContent)
	// FINALIZE urlencoded.
	fin := c.postForm("/2/media/upload", url.Values{"command": {"FINALIZE"}, "media_id": {id}})
	wantStatus(t, fin, http.StatusOK)
	sameShape(t, fin.body, rec(t, "v2 cmd FINALIZE"))
	wantStatus(t, c.v2Status(id), http.StatusOK)
	sum := sha256.Sum256(data)
	if info := c.srv.Media(t, id); info.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 %s", info.SHA256)
	}
	// Retried FINALIZE.
	invalid(t, c.postForm("/2/media/upload", url.Values{"command": {"FINALIZE"}, "media_id": {id}}),
		"BadRequest: Media already finalized")
}

func TestCommandStyleErrors(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{MaxSegment: 100})
	code38 := rec(t, "v2 cmd JSON body")
	// A JSON body is code 38 (v2_09).
	r := c.postJSON("/2/media/upload", `{"command":"INIT","media_type":"image/jpeg","total_bytes":247818}`)
	wantStatus(t, r, http.StatusBadRequest)
	sameJSON(t, r.body, code38)
	// STATUS must be a GET.
	r = c.postForm("/2/media/upload", url.Values{"command": {"STATUS"}, "media_id": {"1"}})
	wantStatus(t, r, http.StatusBadRequest)
	sameJSON(t, r.body, code38)
	// No command and no media.
	sameJSON(t, c.postForm("/2/media/upload", url.Values{}).body, code38)
	invalid(t, c.postForm("/2/media/upload", url.Values{"command": {"PUT"}}),
		"$.command: does not have a value in the enumeration [INIT, APPEND, FINALIZE]")
	sameJSON(t, c.postForm("/2/media/upload", url.Values{"command": {"INIT"}, "media_type": {"video/mp4"}}).body,
		`{"errors":[{"code":38,"message":"total_bytes parameter is missing."}]}`)
	invalid(t, c.postForm("/2/media/upload", url.Values{"command": {"INIT"}, "media_type": {"video/x"}, "total_bytes": {"1"}}),
		"$.media_type: does not have a value in the enumeration [video/mp4, video/webm, video/mp2t, video/quicktime, text/srt, text/vtt, image/jpeg, image/gif, image/bmp, image/png, image/webp, image/pjpeg, image/tiff, model/gltf-binary, model/vnd.usdz+zip]")
	invalid(t, c.postForm("/2/media/upload", url.Values{"command": {"INIT"}, "media_type": {"video/mp4"}, "total_bytes": {"0"}}),
		"$.total_bytes: must have a minimum value of 1")

	ini := c.postForm("/2/media/upload", url.Values{"command": {"INIT"}, "media_type": {"video/mp4"}, "total_bytes": {"10"}})
	wantStatus(t, ini, http.StatusAccepted)
	id := ini.data(t)["id"].(string)
	app := func(fields ...field) reply {
		return c.postMultipart("/2/media/upload", append([]field{{name: "command", value: "APPEND"}}, fields...)...)
	}
	invalid(t, app(field{name: "media_id", value: id}, field{name: "segment_index", value: "1000"}, field{name: "media", value: "x", file: true}),
		"SegmentIndex must be between 0 and 999.")
	sameJSON(t, app(field{name: "media_id", value: id}, field{name: "segment_index", value: "0"}).body, code38)
	sameJSON(t, app(field{name: "segment_index", value: "0"}, field{name: "media", value: "x", file: true}).body,
		`{"errors":[{"code":38,"message":"media_id parameter is missing."}]}`)
	big := app(field{name: "media_id", value: id}, field{name: "segment_index", value: "0"}, field{name: "media", value: string(make([]byte, 101)), file: true})
	wantStatus(t, big, http.StatusRequestEntityTooLarge)
	if len(big.body) != 0 {
		t.Errorf("413 body %q", big.body)
	}
	invalid(t, app(field{name: "media_id", value: "1234567890123456789"}, field{name: "segment_index", value: "0"}, field{name: "media", value: "x", file: true}),
		"BadRequest: Not found")
	invalid(t, c.postForm("/2/media/upload", url.Values{"command": {"FINALIZE"}, "media_id": {id}}),
		"Segments do not add up to provided total file size.")
}
