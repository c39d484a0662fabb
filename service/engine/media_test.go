package engine

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
)

func testServer(t *testing.T) *Engine {
	t.Helper()
	return newEngine(t, Config{Backend: newFakeX()})
}

func TestValidateStart(t *testing.T) {
	t.Parallel()
	s := testServer(t)
	cases := []struct {
		name     string
		start    *mediagwv1.UploadStart
		wantCat  string
		wantErr  string
		wantType string
	}{
		{name: "video derives tweet_video", start: &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: 10}, wantCat: "tweet_video", wantType: "video/mp4"},
		{name: "gif derives tweet_gif", start: &mediagwv1.UploadStart{MediaType: "image/gif", TotalBytes: 10}, wantCat: "tweet_gif", wantType: "image/gif"},
		{name: "png derives tweet_image", start: &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: 10}, wantCat: "tweet_image", wantType: "image/png"},
		{name: "srt derives subtitles", start: &mediagwv1.UploadStart{MediaType: "text/srt", TotalBytes: 10}, wantCat: "subtitles", wantType: "text/srt"},
		{name: "type is case-insensitive", start: &mediagwv1.UploadStart{MediaType: " Video/MP4 ", TotalBytes: 10}, wantCat: "tweet_video", wantType: "video/mp4"},
		{name: "model has no category", start: &mediagwv1.UploadStart{MediaType: "model/gltf-binary", TotalBytes: 10}, wantCat: "", wantType: "model/gltf-binary"},
		{name: "explicit dm_video", start: &mediagwv1.UploadStart{MediaType: "video/webm", TotalBytes: 10, MediaCategory: mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_VIDEO}, wantCat: "dm_video", wantType: "video/webm"},
		{name: "missing type", start: &mediagwv1.UploadStart{TotalBytes: 10}, wantErr: "media_type is required"},
		{name: "unknown type", start: &mediagwv1.UploadStart{MediaType: "application/pdf", TotalBytes: 10}, wantErr: `media_type "application/pdf" is not one of X's media types`},
		{name: "incompatible category", start: &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: 10, MediaCategory: mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_VIDEO}, wantErr: "media_category tweet_video does not accept media_type image/png"},
		{name: "png as gif category", start: &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: 10, MediaCategory: mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_GIF}, wantErr: "does not accept"},
		{name: "unknown enum", start: &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: 10, MediaCategory: 99}, wantErr: "not a known category"},
		{name: "zero bytes", start: &mediagwv1.UploadStart{MediaType: "image/png"}, wantErr: "total_bytes must be greater than 0, got 0"},
		{name: "negative bytes", start: &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: -5}, wantErr: "must not be negative, got -5"},
		{name: "image over 5 MiB", start: &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: 5<<20 + 1}, wantErr: "exceeds the tweet_image limit of 5242880 bytes"},
		{name: "image at 5 MiB", start: &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: 5 << 20}, wantCat: "tweet_image", wantType: "image/png"},
		{name: "gif over 15 MiB", start: &mediagwv1.UploadStart{MediaType: "image/gif", TotalBytes: 15<<20 + 1}, wantErr: "tweet_gif limit of 15728640"},
		{name: "video over default", start: &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: 512<<20 + 1}, wantErr: "tweet_video limit of 536870912"},
		{name: "too many owners", start: &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: 1, AdditionalOwners: make([]string, 101)}, wantErr: "at most 100"},
		{name: "bad owner", start: &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: 1, AdditionalOwners: []string{"12", "bob"}}, wantErr: `"bob" is not an X user id`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec, err := s.validateStart(tc.start)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				if got := status.Code(apierr.ToStatus(err)); got != codes.InvalidArgument {
					t.Fatalf("code = %v, want InvalidArgument", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if spec.Category != tc.wantCat || spec.MediaType != tc.wantType {
				t.Fatalf("spec = %+v, want category %q type %q", spec, tc.wantCat, tc.wantType)
			}
		})
	}
}

func TestSniff(t *testing.T) {
	t.Parallel()
	mp4 := []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00")
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	cases := []struct {
		mediaType string
		head      []byte
		wantErr   string
	}{
		{"video/mp4", mp4, ""},
		{"video/quicktime", mp4, ""},
		{"video/webm", []byte{0x1A, 0x45, 0xDF, 0xA3, 1, 2, 3, 4}, ""},
		{"image/png", png, ""},
		{"image/jpeg", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10}, ""},
		{"image/pjpeg", []byte{0xFF, 0xD8, 0xFF, 0xE1}, ""},
		{"image/gif", []byte("GIF89a\x01\x00"), ""},
		{"image/webp", []byte("RIFF\x10\x00\x00\x00WEBPVP8 "), ""},
		{"image/bmp", []byte("BM\x00\x00"), ""},
		{"image/tiff", []byte("II*\x00\x08\x00"), ""},
		{"image/tiff", []byte("MM\x00*\x00\x08"), ""},
		{"video/mp2t", []byte("anything"), ""}, // not sniffed
		{"text/vtt", []byte("WEBVTT\n\n"), ""},
		{"video/mp4", png, "media_type is video/mp4 but the bytes are image/png"},
		{"image/png", mp4, "media_type is image/png but the bytes are video/mp4"},
		{"image/gif", []byte("GIF90a"), "media_type is image/gif but the bytes are not a gif file (unrecognised format)"},
		{"video/mp4", []byte{1}, "not a mp4 file"},
	}
	for _, tc := range cases {
		err := sniff(tc.mediaType, tc.head)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("sniff(%s, %q) = %v, want nil", tc.mediaType, tc.head, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("sniff(%s, %q) = %v, want %q", tc.mediaType, tc.head, err, tc.wantErr)
		}
	}
}

func TestParseCategory(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]mediagwv1.MediaCategory{
		"":                             mediagwv1.MediaCategory_MEDIA_CATEGORY_UNSPECIFIED,
		"tweet_video":                  mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_VIDEO,
		"AMPLIFY_VIDEO":                mediagwv1.MediaCategory_MEDIA_CATEGORY_AMPLIFY_VIDEO,
		"MEDIA_CATEGORY_DM_GIF":        mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_GIF,
		"media_category_subtitles":     mediagwv1.MediaCategory_MEDIA_CATEGORY_SUBTITLES,
		"MEDIA_CATEGORY_UNSPECIFIED":   mediagwv1.MediaCategory_MEDIA_CATEGORY_UNSPECIFIED,
		"dm_image":                     mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_IMAGE,
		"MEDIA_CATEGORY_TWEET_IMAGE":   mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_IMAGE,
		"tweet_gif":                    mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_GIF,
		"MEDIA_CATEGORY_AMPLIFY_VIDEO": mediagwv1.MediaCategory_MEDIA_CATEGORY_AMPLIFY_VIDEO,
	} {
		got, err := ParseCategory(in)
		if err != nil || got != want {
			t.Errorf("ParseCategory(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseCategory("tweet_audio"); err == nil || !strings.Contains(err.Error(), `"tweet_audio" is not one of X's categories`) {
		t.Errorf("ParseCategory(tweet_audio) error = %v", err)
	}
}

func TestDetectMediaType(t *testing.T) {
	for head, want := range map[string]string{
		"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00": "video/mp4",
		"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR":    "image/png",
		"GIF89a\x01\x00\x01\x00":                   "image/gif",
		"RIFF\x00\x00\x00\x00WEBPVP8 ":             "image/webp",
		"hello, world....":                         "",
	} {
		if got := DetectMediaType([]byte(head)); got != want {
			t.Errorf("DetectMediaType(%q) = %q, want %q", head, got, want)
		}
	}
}

// TestEchoIsBounded: no refusal repeats more than a bounded part of what
// the caller sent, however long.
func TestEchoIsBounded(t *testing.T) {
	t.Parallel()
	e := testServer(t)
	long := strings.Repeat("x", 900<<10)
	for _, st := range []*mediagwv1.UploadStart{
		{MediaType: long, TotalBytes: 1},
		{MediaType: "image/png", TotalBytes: 1, AdditionalOwners: []string{long}},
	} {
		_, err := e.validateStart(st)
		if err == nil || len(err.Error()) > 400 {
			t.Fatalf("refusal of %d bytes: %.100s", len(fmt.Sprint(err)), err)
		}
	}
	if _, err := ParseCategory(long); err == nil || len(err.Error()) > 400 {
		t.Fatalf("category refusal of %d bytes", len(fmt.Sprint(err)))
	}
}
