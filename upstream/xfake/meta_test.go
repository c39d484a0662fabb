package xfake_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// srt is a small valid subtitles file.
var srt = []byte("1\n00:00:01,000 --> 00:00:02,000\nHello\n")

func TestMetadataV2StoresAndShows(t *testing.T) {
	c := newClient(t, xfake.Options{})
	id, r := c.upload("image/png", "tweet_image", png(4, 3, 200))
	wantStatus(t, r, http.StatusOK)
	alt := strings.Repeat("é", 1000) // 1000 characters, 2000 bytes
	r = c.postJSON("/2/media/metadata", fmt.Sprintf(`{"id":%q,"metadata":{"alt_text":{"text":%q},
		"sensitive_media_warning":{"adult_content":true,"graphic_violence":false,"other":true},
		"allow_download_status":{"allow_download":false},"audience_policy":{"x_subscriptions":["Any"]},
		"geo_restrictions":{"blacklisted_country_codes":["us"]},"content_expiration":{"timestamp_sec":1900000000},
		"found_media_origin":{"id":"u5BzatR15TZ04","provider":"giphy"},"upload_source":{"upload_source":"gallery"}}}`, id, alt))
	wantStatus(t, r, http.StatusOK)
	d := r.data(t)
	if d["id"] != id {
		t.Fatalf("id %v, want %s", d["id"], id)
	}
	am := d["associated_metadata"].(map[string]any)
	if got := am["alt_text"].(map[string]any)["text"]; got != alt {
		t.Fatalf("echoed alt text has %d bytes", len(fmt.Sprint(got)))
	}
	for _, k := range []string{"sensitive_media_warning", "allow_download_status", "audience_policy",
		"geo_restrictions", "content_expiration", "found_media_origin", "upload_source"} {
		if _, ok := am[k]; !ok {
			t.Errorf("associated_metadata lacks %s: %s", k, r)
		}
	}
	info := c.srv.Media(t, id)
	md := info.Metadata
	if md == nil || md.AltText == nil || md.AltText.Text != alt || !md.SensitiveMediaWarning.AdultContent ||
		md.SensitiveMediaWarning.GraphicViolence || !md.SensitiveMediaWarning.Other ||
		md.AllowDownloadStatus.AllowDownload || md.ContentExpiration.TimestampSec != 1900000000 ||
		md.FoundMediaOrigin.Provider != "giphy" || md.GeoRestrictions.BlacklistedCountryCodes[0] != "us" {
		t.Fatalf("stored metadata %+v", md)
	}
	if info.MetadataRequests != 1 {
		t.Fatalf("metadata_requests %d, want 1", info.MetadataRequests)
	}
	// A second call sets what it carries and keeps the rest.
	wantStatus(t, c.postJSON("/2/media/metadata", fmt.Sprintf(`{"id":%q,"metadata":{"alt_text":{"text":"cat"}}}`, id)), http.StatusOK)
	info = c.srv.Media(t, id)
	if info.Metadata.AltText.Text != "cat" || info.Metadata.AllowDownloadStatus == nil || info.MetadataRequests != 2 {
		t.Fatalf("after the second call: %+v, %d calls", info.Metadata, info.MetadataRequests)
	}
	look := c.do(http.MethodGet, "/2/media/3_"+id+"?media.fields=alt_text,width,height,type", "", nil)
	wantStatus(t, look, http.StatusOK)
	sameJSON(t, look.body, fmt.Sprintf(`{"data":{"media_key":"3_%s","type":"photo","width":4,"height":3,"alt_text":"cat"}}`, id))
}

func TestMetadataV2Refusals(t *testing.T) {
	clk := newClock()
	c := newClient(t, xfake.Options{Now: clk.Now, ProcessingTime: 10 * time.Second})
	img, _ := c.upload("image/png", "tweet_image", png(2, 2, 100))
	vid, r := c.upload("video/mp4", "tweet_video", mp4(2000))
	wantStatus(t, r, http.StatusOK)
	body := func(id, md string) string { return fmt.Sprintf(`{"id":%q,"metadata":%s}`, id, md) }
	cases := []struct {
		name, auth, body string
		status           int
		want             string
	}{
		{"1001 characters", "", body(img, fmt.Sprintf(`{"alt_text":{"text":%q}}`, strings.Repeat("a", 1001))),
			400, "$.metadata.alt_text.text: may only be 1000 characters long"},
		{"no metadata member", "", fmt.Sprintf(`{"id":%q,"alt_text":{"text":"x"}}`, img), 500, "internal server error"},
		{"unknown metadata member", "", body(img, `{"caption":{"text":"x"}}`), 400, "$.metadata.caption: is not defined"},
		{"audience not Any", "", body(img, `{"audience_policy":{"x_subscriptions":["Some"]}}`), 400, "enumeration [Any]"},
		{"wrong type", "", body(img, `{"allow_download_status":{"allow_download":"yes"}}`), 400, "string found, boolean expected"},
		{"unknown media", "", body("1234567890123456789", `{"alt_text":{"text":"x"}}`), 400, "BadRequest: Not found"},
		{"another user's media", "Bearer U", body(img, `{"alt_text":{"text":"x"}}`), 403, "Forbidden"},
		{"video still processing", "", body(vid, `{"alt_text":{"text":"x"}}`), 400, "processing has not succeeded"},
		{"not JSON", "", `alt_text=x`, 400, "Request body is not valid JSON."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cc := c
			if tc.auth != "" {
				cc = c.as(tc.auth)
			}
			r := cc.postJSON("/2/media/metadata", tc.body)
			if r.status != tc.status || !strings.Contains(string(r.body), tc.want) {
				t.Fatalf("got %s, want %d with %q", r, tc.status, tc.want)
			}
		})
	}
	if n := c.srv.Media(t, img).MetadataRequests; n != 0 {
		t.Fatalf("refused calls were counted as applied: %d", n)
	}
	clk.Add(11 * time.Second)
	wantStatus(t, c.postJSON("/2/media/metadata", body(vid, `{"alt_text":{"text":"a video"}}`)), http.StatusOK)
	// A failed video refuses metadata with its own reason.
	bad, r := c.upload("video/mp4", "tweet_video", jpeg(2000))
	wantStatus(t, r, http.StatusOK)
	clk.Add(11 * time.Second)
	r = c.postJSON("/2/media/metadata", body(bad, `{"alt_text":{"text":"x"}}`))
	if r.status != 400 || !strings.Contains(string(r.body), "Media processing failed.") {
		t.Fatalf("metadata on a failed video: %s", r)
	}
}

// subtitlesSetup uploads a processed tweet_video and a subtitles track and
// returns their ids.
func subtitlesSetup(t *testing.T, c *client, clk *fakeClock) (video, track string) {
	t.Helper()
	video, r := c.upload("video/mp4", "tweet_video", mp4(3000))
	wantStatus(t, r, http.StatusOK)
	track, r = c.upload("text/srt", "subtitles", srt)
	wantStatus(t, r, http.StatusOK)
	clk.Add(2 * time.Second)
	return video, track
}

func TestSubtitlesV2(t *testing.T) {
	clk := newClock()
	c := newClient(t, xfake.Options{Now: clk.Now, ProcessingTime: time.Second})
	video, track := subtitlesSetup(t, c, clk)
	img, _ := c.upload("image/png", "tweet_image", png(2, 2, 100))
	create := func(id, cat, sub, lang string) reply {
		return c.postJSON("/2/media/subtitles", fmt.Sprintf(
			`{"id":%q,"media_category":%q,"subtitles":{"id":%q,"language_code":%q,"display_name":"English"}}`, id, cat, sub, lang))
	}
	refusals := []struct {
		name string
		r    func() reply
		want string
	}{
		{"lowercase language", func() reply { return create(video, "TweetVideo", track, "en") }, "does not match the regex pattern ^[A-Z]{2}$"},
		{"snake_case category", func() reply { return create(video, "tweet_video", track, "EN") }, "enumeration [AmplifyVideo, TweetVideo]"},
		{"on an image", func() reply { return create(img, "TweetVideo", track, "EN") }, "Subtitles can only be added"},
		{"category differs", func() reply { return create(video, "AmplifyVideo", track, "EN") }, "Subtitles can only be added"},
		{"track is not subtitles", func() reply { return create(video, "TweetVideo", img, "EN") }, "not a subtitles upload"},
	}
	for _, tc := range refusals {
		if r := tc.r(); r.status != 400 || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: %s, want 400 with %q", tc.name, r, tc.want)
		}
	}
	if r := c.as("Bearer U").postJSON("/2/media/subtitles", fmt.Sprintf(
		`{"id":%q,"media_category":"TweetVideo","subtitles":{"id":%q,"language_code":"EN","display_name":"English"}}`, video, track)); r.status != 403 {
		t.Errorf("another user's video: %s", r)
	}
	r := create(video, "TweetVideo", track, "EN")
	wantStatus(t, r, http.StatusOK)
	sameJSON(t, r.body, fmt.Sprintf(`{"data":{"id":%q,"media_category":"TweetVideo",
		"associated_subtitles":[{"id":%q,"language_code":"EN","display_name":"English"}]}}`, video, track))
	info := c.srv.Media(t, video)
	if len(info.Subtitles) != 1 || info.Subtitles[0].MediaID != track || info.SubtitlesCreateRequests != 1 {
		t.Fatalf("stored %+v, %d creates", info.Subtitles, info.SubtitlesCreateRequests)
	}
	del := func(lang string) reply {
		return c.do(http.MethodDelete, "/2/media/subtitles", "application/json", strings.NewReader(
			fmt.Sprintf(`{"id":%q,"media_category":"TweetVideo","language_code":%q}`, video, lang)))
	}
	if r := del("FR"); r.status != 400 {
		t.Fatalf("deleting a language never attached: %s", r)
	}
	r = del("EN")
	wantStatus(t, r, http.StatusOK)
	sameJSON(t, r.body, `{"data":{"deleted":true}}`)
	info = c.srv.Media(t, video)
	if len(info.Subtitles) != 0 || info.SubtitlesDeleteRequests != 1 || info.SubtitlesCreateRequests != 1 {
		t.Fatalf("after delete: %+v", info)
	}
	if n := c.srv.X.Stats().Requests["subtitles"]; n != 9 {
		t.Fatalf("subtitles requests %d, want 9 (every call, refused ones included)", n)
	}
}

func TestSubtitlesOnUnprocessedVideoRefused(t *testing.T) {
	clk := newClock()
	c := newClient(t, xfake.Options{Now: clk.Now, ProcessingTime: 10 * time.Second})
	video, r := c.upload("video/mp4", "amplify_video", mp4(3000))
	wantStatus(t, r, http.StatusOK)
	track, _ := c.upload("text/vtt", "subtitles", []byte("WEBVTT\n\n00:01.000 --> 00:02.000\nHi\n"))
	r = c.postJSON("/2/media/subtitles", fmt.Sprintf(
		`{"id":%q,"media_category":"AmplifyVideo","subtitles":{"id":%q,"language_code":"DE","display_name":"Deutsch"}}`, video, track))
	if r.status != 400 || !strings.Contains(string(r.body), "processing has not succeeded") {
		t.Fatalf("subtitles on a processing video: %s", r)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q", ct)
	}
}

func TestLookup(t *testing.T) {
	clk := newClock()
	c := newClient(t, xfake.Options{Now: clk.Now, ProcessingTime: time.Second})
	video, _ := subtitlesSetup(t, c, clk)
	r := c.do(http.MethodGet, "/2/media/7_"+video+"?media.fields=variants,preview_image_url", "", nil)
	wantStatus(t, r, http.StatusOK)
	d := r.data(t)
	if d["type"] != "video" || d["preview_image_url"] == nil || d["variants"] == nil {
		t.Fatalf("video lookup: %s", r)
	}
	for _, path := range []string{"/2/media/7_1234567890123456789", "/2/media/3_" + video} {
		r = c.do(http.MethodGet, path, "", nil)
		if r.status != 200 || !strings.Contains(string(r.body), "resource-not-found") || strings.Contains(string(r.body), `"data"`) {
			t.Errorf("%s: %s", path, r)
		}
	}
	if r = c.as("Bearer U").do(http.MethodGet, "/2/media/7_"+video, "", nil); !strings.Contains(string(r.body), "resource-not-found") {
		t.Errorf("another user's media: %s", r)
	}
	if r = c.do(http.MethodGet, "/2/media/7_"+video+"?media.fields=colour", "", nil); r.status != 400 {
		t.Errorf("unknown field: %s", r)
	}
	if r = c.do(http.MethodGet, "/2/media/abc", "", nil); r.status != 400 {
		t.Errorf("malformed key: %s", r)
	}
}

func TestV11MetadataAndSubtitles(t *testing.T) {
	clk := newClock()
	c := newClient(t, xfake.Options{Now: clk.Now, ProcessingTime: time.Second})
	c = c.as(oauthHeader("tok"))
	img := v11Upload(t, c, "image/png", "tweet_image", png(2, 2, 100))
	r := c.postJSON("/1.1/media/metadata/create.json", fmt.Sprintf(
		`{"media_id":%s,"alt_text":{"text":"dancing cat"},"sensitive_media_warning":["adult_content","other"]}`, img))
	if r.status != 200 || len(r.body) != 0 {
		t.Fatalf("metadata/create: %s", r)
	}
	info := c.srv.Media(t, img)
	if info.Metadata.AltText.Text != "dancing cat" || !info.Metadata.SensitiveMediaWarning.AdultContent ||
		info.Metadata.SensitiveMediaWarning.GraphicViolence || !info.Metadata.SensitiveMediaWarning.Other {
		t.Fatalf("stored %+v", info.Metadata)
	}
	for _, tc := range []struct{ body, want string }{
		{fmt.Sprintf(`{"media_id":%q,"alt_text":{"text":%q}}`, img, strings.Repeat("a", 1001)), `"code":44`},
		{`{"alt_text":{"text":"x"}}`, "media_id parameter is missing."},
		{fmt.Sprintf(`{"media_id":%q,"sensitive_media_warning":["nudity"]}`, img), `"code":44`},
	} {
		if r := c.postJSON("/1.1/media/metadata/create.json", tc.body); r.status != 400 || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: %s", tc.body, r)
		}
	}
	video := v11Upload(t, c, "video/mp4", "tweet_video", mp4(3000))
	track := v11Upload(t, c, "text/plain", "Subtitles", srt) // twitter-api-v2's v1 form of an SRT track
	clk.Add(2 * time.Second)
	r = c.postJSON("/1.1/media/metadata/create.json", fmt.Sprintf(`{"media_id":%q,"alt_text":{"text":"v"}}`, video))
	if r.status != 400 || !strings.Contains(string(r.body), "only supported for images and GIFs") {
		t.Errorf("v1.1 alt text on a video: %s", r)
	}
	sub := fmt.Sprintf(`{"media_id":%q,"media_category":"TweetVideo","subtitle_info":{"subtitles":[{"media_id":%q,"language_code":"EN","display_name":"English"}]}}`, video, track)
	if r = c.postJSON("/1.1/media/subtitles/create.json", strings.Replace(sub, `"EN"`, `"en"`, 1)); r.status != 400 {
		t.Errorf("lowercase language: %s", r)
	}
	if r = c.postJSON("/1.1/media/subtitles/create.json", sub); r.status != 200 {
		t.Fatalf("subtitles/create: %s", r)
	}
	if got := c.srv.Media(t, video).Subtitles; len(got) != 1 || got[0].DisplayName != "English" {
		t.Fatalf("stored %+v", got)
	}
	r = c.postJSON("/1.1/media/subtitles/delete.json", fmt.Sprintf(
		`{"media_id":%q,"media_category":"TweetVideo","subtitle_info":{"subtitles":[{"language_code":"EN"}]}}`, video))
	if r.status != 200 || len(c.srv.Media(t, video).Subtitles) != 0 {
		t.Fatalf("subtitles/delete: %s", r)
	}
	if r = c.as("Bearer T").postJSON("/1.1/media/metadata/create.json", fmt.Sprintf(`{"media_id":%q}`, img)); r.status != 403 {
		t.Errorf("a bearer token on v1.1: %s", r)
	}
}

// v11Upload uploads data in one segment on v1.1 and returns its id.
func v11Upload(t *testing.T, c *client, mediaType, category string, data []byte) string {
	t.Helper()
	r := c.postForm("/1.1/media/upload.json", map[string][]string{"command": {"INIT"},
		"total_bytes": {fmt.Sprint(len(data))}, "media_type": {mediaType}, "media_category": {category}})
	if r.status != http.StatusAccepted {
		t.Fatalf("INIT: %s", r)
	}
	id := r.obj(t)["media_id_string"].(string)
	r = c.postMultipart("/1.1/media/upload.json", field{name: "command", value: "APPEND"},
		field{name: "media_id", value: id}, field{name: "segment_index", value: "0"},
		field{name: "media", value: string(data), file: true})
	if r.status != http.StatusNoContent {
		t.Fatalf("APPEND: %s", r)
	}
	if r = c.postForm("/1.1/media/upload.json", map[string][]string{"command": {"FINALIZE"}, "media_id": {id}}); r.status/100 != 2 {
		t.Fatalf("FINALIZE: %s", r)
	}
	return id
}

func TestPlainTextSubtitlesOnlyOnV11(t *testing.T) {
	c := newClient(t, xfake.Options{})
	r := c.postJSON("/2/media/upload/initialize", `{"media_type":"text/plain","total_bytes":10,"media_category":"subtitles"}`)
	if r.status != 400 {
		t.Fatalf("v2 took text/plain: %s", r)
	}
	v11 := c.as(oauthHeader("tok"))
	r = v11.postForm("/1.1/media/upload.json", map[string][]string{"command": {"INIT"}, "total_bytes": {"10"},
		"media_type": {"text/plain"}, "media_category": {"tweet_image"}})
	if r.status != 400 {
		t.Fatalf("v1.1 took text/plain as an image: %s", r)
	}
}

func TestOwnerSurvivesTokenRefresh(t *testing.T) {
	c := newClient(t, xfake.Options{RefreshTokens: []string{"rt0"}, Tokens: []string{"static"}})
	refresh := func(rt string) (access, next string) {
		r := c.postForm("/2/oauth2/token", map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		wantStatus(t, r, http.StatusOK)
		o := r.obj(t)
		return o["access_token"].(string), o["refresh_token"].(string)
	}
	a1, rt1 := refresh("rt0")
	first := c.as("Bearer " + a1)
	id, r := first.upload("image/png", "tweet_image", png(2, 2, 100))
	wantStatus(t, r, http.StatusOK)
	a2, _ := refresh(rt1)
	r = c.as("Bearer "+a2).postJSON("/2/media/metadata", fmt.Sprintf(`{"id":%q,"metadata":{"alt_text":{"text":"x"}}}`, id))
	wantStatus(t, r, http.StatusOK)
	r = c.as("Bearer static").postJSON("/2/media/metadata", fmt.Sprintf(`{"id":%q,"metadata":{"alt_text":{"text":"x"}}}`, id))
	wantStatus(t, r, http.StatusForbidden)
}
