package xfake_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// TestV11CategorySpellings: v1.1 INIT takes media_category in snake_case,
// CamelCase (twitter-api-v2's TweetVideo, TweetGif; X answered TweetGif with
// a 16_ media key and processing_info) and joined lower case (tweetvideo, X's
// own sample), and treats them as the snake_case category.
func TestV11CategorySpellings(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{}).as(oauthHeader("tok"))
	cases := []struct {
		spelling, canonical, prefix string
		mediaType                   string
		data                        []byte
		async                       bool
	}{
		{"tweet_video", "tweet_video", "7", "video/mp4", mp4(1500), true},
		{"TweetVideo", "tweet_video", "7", "video/mp4", mp4(1500), true},
		{"tweetvideo", "tweet_video", "7", "video/mp4", mp4(1500), true},
		{"DmVideo", "dm_video", "7", "video/mp4", mp4(1500), true},
		{"AmplifyVideo", "amplify_video", "13", "video/mp4", mp4(1500), true},
		{"TweetGif", "tweet_gif", "16", "image/gif", gif(10, 10, 1500), true},
		{"DmGif", "dm_gif", "16", "image/gif", gif(10, 10, 1500), true},
		{"TweetImage", "tweet_image", "3", "image/png", png(10, 10, 1500), false},
		{"DmImage", "dm_image", "3", "image/png", png(10, 10, 1500), false},
		{"tweetimage", "tweet_image", "3", "image/png", png(10, 10, 1500), false},
		{"Subtitles", "subtitles", "3", "text/srt", []byte("1\n00:00:01,000 --> 00:00:02,000\nHi\n"), false},
	}
	for _, tc := range cases {
		ini := c.postForm(v11, url.Values{"command": {"INIT"}, "total_bytes": {strconv.Itoa(len(tc.data))},
			"media_type": {tc.mediaType}, "media_category": {tc.spelling}})
		wantStatus(t, ini, http.StatusAccepted)
		sameShape(t, ini.body, rec(t, "v1 INIT category"))
		id := ini.obj(t)["media_id_string"].(string)
		if key := ini.obj(t)["media_key"]; key != tc.prefix+"_"+id {
			t.Errorf("%s: media_key %v, want prefix %s_", tc.spelling, key, tc.prefix)
		}
		wantStatus(t, c.postMultipart(v11, field{name: "command", value: "APPEND"}, field{name: "media_id", value: id},
			field{name: "segment_index", value: "0"}, field{name: "media", value: string(tc.data), file: true}), http.StatusNoContent)
		fin := c.postForm(v11, url.Values{"command": {"FINALIZE"}, "media_id": {id}})
		if tc.async {
			wantStatus(t, fin, http.StatusOK)
			sameShape(t, fin.body, rec(t, "v1 FINALIZE async"))
		} else {
			wantStatus(t, fin, http.StatusCreated)
		}
		if info := c.srv.Media(t, id); info.MediaCategory != tc.canonical || info.Processing != tc.async {
			t.Errorf("%s: inspection category %q processing %v", tc.spelling, info.MediaCategory, info.Processing)
		}
	}
	// Other spellings are not X's.
	for _, bad := range []string{"TWEET_VIDEO", "Tweet_Video", "tweetVideo", "tweet-video", "TweetVideos", "video", ""} {
		r := c.postForm(v11, url.Values{"command": {"INIT"}, "total_bytes": {"10"}, "media_type": {"video/mp4"}, "media_category": {bad}})
		wantStatus(t, r, http.StatusBadRequest)
		sameJSON(t, r.body, `{"request":"/1.1/media/upload.json","error":"Invalid media_category."}`)
	}
}

// TestV2CategoriesSnakeCaseOnly: both v2 dialects validate media_category
// against the OpenAPI enum, so the v1.1 spellings are refused there.
func TestV2CategoriesSnakeCaseOnly(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{})
	enum := "$.media_category: does not have a value in the enumeration [amplify_video, tweet_gif, tweet_image, tweet_video, dm_gif, dm_image, dm_video, subtitles]"
	for _, bad := range []string{"TweetVideo", "tweetvideo"} {
		invalid(t, c.postForm("/2/media/upload", url.Values{"command": {"INIT"}, "total_bytes": {"10"}, "media_type": {"video/mp4"}, "media_category": {bad}}), enum)
		invalid(t, c.postJSON("/2/media/upload/initialize", `{"media_type":"video/mp4","total_bytes":10,"media_category":"`+bad+`"}`), enum)
	}
}

// TestV11Headers: the x-mediaid, x-segmentcount and x-totalbytes headers of
// X's recorded v1.1 exchanges. APPEND carries all three, and X sent 0 in both
// counters on the first and the second segment alike (v1_02, v1_03); INIT
// (v1_01, v1_05) and a synchronous FINALIZE (v1_04) carry x-mediaid, an
// asynchronous FINALIZE does not (v1_06).
func TestV11Headers(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{}).as(oauthHeader("tok"))
	for _, category := range []string{"", "tweet_video"} {
		data := mp4(3000)
		vals := url.Values{"command": {"INIT"}, "total_bytes": {"3000"}, "media_type": {"video/mp4"}}
		if category != "" {
			vals.Set("media_category", category)
		}
		ini := c.postForm(v11, vals)
		wantStatus(t, ini, http.StatusAccepted)
		id := ini.obj(t)["media_id_string"].(string)
		if got := ini.header.Get("x-mediaid"); got != id {
			t.Errorf("INIT x-mediaid %q, want %s", got, id)
		}
		for i, seg := range [][]byte{data[:2000], data[2000:]} {
			app := c.postMultipart(v11, field{name: "command", value: "APPEND"}, field{name: "media_id", value: id},
				field{name: "segment_index", value: strconv.Itoa(i)}, field{name: "media", value: string(seg), file: true})
			wantStatus(t, app, http.StatusNoContent)
			want := map[string]string{"x-mediaid": id, "x-segmentcount": "0", "x-totalbytes": "0",
				"content-type": "text/html;charset=utf-8", "x-rate-limit-limit": "20000"}
			for k, v := range want {
				if got := app.header.Get(k); got != v {
					t.Errorf("APPEND %d %s: %q, want %q", i, k, got, v)
				}
			}
		}
		fin := c.postForm(v11, url.Values{"command": {"FINALIZE"}, "media_id": {id}})
		got, sync := fin.header.Get("x-mediaid"), category == ""
		switch {
		case sync && (fin.status != http.StatusCreated || got != id):
			t.Errorf("sync FINALIZE %d x-mediaid %q, want 201 and %s", fin.status, got, id)
		case !sync && (fin.status != http.StatusOK || got != ""):
			t.Errorf("async FINALIZE %d x-mediaid %q, want 200 and none", fin.status, got)
		}
	}
}
