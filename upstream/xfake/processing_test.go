package xfake_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

func TestSyncSizeLimits(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{MaxSegment: 16 << 20})
	const mib = 1 << 20
	cases := []struct {
		name, mediaType, category string
		data                      []byte
		msg                       string // "" = finalizes
	}{
		{"sync video over 15MiB", "video/mp4", "", mp4(15*mib + 1), "Large file can not be finalized synchronously."},
		{"sync video at 15MiB", "video/mp4", "", mp4(15 * mib), ""},
		{"async video over 15MiB", "video/mp4", "tweet_video", mp4(15*mib + 1), ""},
		{"sync GIF over 5MiB", "image/gif", "", gif(1, 1, 5*mib+1), "File size exceeds 5242880 bytes."},
		{"async GIF over 5MiB", "image/gif", "tweet_gif", gif(1, 1, 5*mib+1), ""},
		{"image over 5MiB", "image/png", "tweet_image", png(1, 1, 5*mib+1), "File size exceeds 5242880 bytes."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, fin := c.upload(tc.mediaType, tc.category, tc.data)
			if tc.msg == "" {
				wantStatus(t, fin, http.StatusOK)
				return
			}
			invalid(t, fin, tc.msg)
		})
	}
}

func TestInvalidMedia(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := newClient(t, xfake.Options{Now: clk.Now, ProcessingTime: time.Second})
	oa := c.as(oauthHeader("tok"))

	// A PNG sent as video/mp4 passes INIT and FINALIZE, then processing
	// fails (v2_06, xurl#29).
	vid, fin := c.upload("video/mp4", "amplify_video", png(10, 10, 300))
	wantStatus(t, fin, http.StatusOK)
	gifID, fin := c.upload("image/gif", "tweet_gif", jpeg(300))
	wantStatus(t, fin, http.StatusOK)
	clk.Add(2 * time.Second)

	for id, msg := range map[string]string{vid: "Unsupported video format", gifID: "file is invalid"} {
		st := c.v2Status(id)
		wantStatus(t, st, http.StatusOK)
		pi := st.data(t)["processing_info"].(map[string]any)
		e, _ := pi["error"].(map[string]any)
		if pi["state"] != "failed" || e["code"] != float64(1) || e["name"] != "InvalidMedia" || e["message"] != msg {
			t.Errorf("processing_info = %v", pi)
		}
		if info := c.srv.Media(t, id); info.State != "failed" {
			t.Errorf("inspection state %q", info.State)
		}
		// The v1.1 view of the same media has v1_09's processing_info shape.
		v1 := oa.do(http.MethodGet, "/1.1/media/upload.json?"+url.Values{"command": {"STATUS"}, "media_id": {id}}.Encode(), "", nil)
		wantStatus(t, v1, http.StatusOK)
		want := map[string]any{"processing_info": shapeOf(t, []byte(rec(t, "v1 failed"))).(map[string]any)["processing_info"]}
		got := map[string]any{"processing_info": shapeOf(t, v1.body).(map[string]any)["processing_info"]}
		if !equalShapes(got, want) {
			t.Errorf("v1.1 failed STATUS %s, want the processing_info of %s", v1.body, rec(t, "v1 failed"))
		}
	}

	// Synchronous media with the wrong bytes fails FINALIZE.
	for _, tc := range []struct {
		mediaType string
		data      []byte
	}{{"image/png", jpeg(100)}, {"image/jpeg", png(1, 1, 100)}, {"video/mp4", jpeg(100)}, {"image/webp", jpeg(100)}} {
		id, fin := c.upload(tc.mediaType, "", tc.data)
		invalid(t, fin, "InvalidMedia")
		if info := c.srv.Media(t, id); info.State != "uploading" {
			t.Errorf("%s: state after refused FINALIZE = %q", tc.mediaType, info.State)
		}
	}
}

func equalShapes(a, b any) bool {
	return shapeString(a) == shapeString(b)
}

func shapeString(v any) string {
	switch x := v.(type) {
	case map[string]any:
		s := "{"
		for _, k := range keys(x) {
			s += k + ":" + shapeString(x[k]) + ","
		}
		return s + "}"
	case []any:
		s := "["
		for _, e := range x {
			s += shapeString(e)
		}
		return s + "]"
	}
	return v.(string)
}
