package engine

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
)

// Size limits X applies per media category (FACTS: images 5 MB, GIF 15 MB;
// X reports the image limit as "File size exceeds 5242880 bytes").
const (
	imageLimit    = 5 << 20
	gifLimit      = 15 << 20
	xMaxBytes     = 17179869184 // X's total_bytes maximum (16 GiB)
	maxOwners     = 100
	sniffLen      = 16 // bytes needed to recognise every known format
	defaultVideoM = 512 << 20
)

// mediaTypes is X's list of accepted media types.
var mediaTypes = map[string]bool{
	"video/mp4": true, "video/webm": true, "video/mp2t": true, "video/quicktime": true,
	"text/srt": true, "text/vtt": true,
	"image/jpeg": true, "image/gif": true, "image/bmp": true, "image/png": true,
	"image/webp": true, "image/pjpeg": true, "image/tiff": true,
	"model/gltf-binary": true, "model/vnd.usdz+zip": true,
}

// IsMediaType reports whether t is one of X's media types.
func IsMediaType(t string) bool { return mediaTypes[t] }

// categoryNames maps the enum to X's wire names.
var categoryNames = map[mediagwv1.MediaCategory]string{
	mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_IMAGE:   "tweet_image",
	mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_GIF:     "tweet_gif",
	mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_VIDEO:   "tweet_video",
	mediagwv1.MediaCategory_MEDIA_CATEGORY_AMPLIFY_VIDEO: "amplify_video",
	mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_IMAGE:      "dm_image",
	mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_GIF:        "dm_gif",
	mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_VIDEO:      "dm_video",
	mediagwv1.MediaCategory_MEDIA_CATEGORY_SUBTITLES:     "subtitles",
}

// ParseCategory accepts a category as X names it (tweet_video) or as the
// enum names it (MEDIA_CATEGORY_TWEET_VIDEO); empty means unspecified.
func ParseCategory(s string) (mediagwv1.MediaCategory, error) {
	if s == "" {
		return mediagwv1.MediaCategory_MEDIA_CATEGORY_UNSPECIFIED, nil
	}
	if v, ok := mediagwv1.MediaCategory_value[strings.ToUpper(s)]; ok {
		return mediagwv1.MediaCategory(v), nil
	}
	for c, name := range categoryNames {
		if strings.EqualFold(name, s) {
			return c, nil
		}
	}
	return 0, apierr.Invalidf("media_category %s is not one of X's categories (tweet_image, tweet_gif, tweet_video, amplify_video, dm_image, dm_gif, dm_video, subtitles)", apierr.Quote(s))
}

// deriveCategory picks X's category for a media type, as documented on
// UploadStart.media_category.
func deriveCategory(mediaType string) mediagwv1.MediaCategory {
	switch {
	case mediaType == "image/gif":
		return mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_GIF
	case strings.HasPrefix(mediaType, "image/"):
		return mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_IMAGE
	case strings.HasPrefix(mediaType, "video/"):
		return mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_VIDEO
	case mediaType == "text/srt" || mediaType == "text/vtt":
		return mediagwv1.MediaCategory_MEDIA_CATEGORY_SUBTITLES
	}
	return mediagwv1.MediaCategory_MEDIA_CATEGORY_UNSPECIFIED
}

// compatible reports whether X accepts media of this type in this category.
func compatible(mediaType string, c mediagwv1.MediaCategory) bool {
	image := strings.HasPrefix(mediaType, "image/")
	switch c {
	case mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_IMAGE, mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_IMAGE:
		return image
	case mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_GIF, mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_GIF:
		return mediaType == "image/gif"
	case mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_VIDEO, mediagwv1.MediaCategory_MEDIA_CATEGORY_AMPLIFY_VIDEO,
		mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_VIDEO:
		return strings.HasPrefix(mediaType, "video/")
	case mediagwv1.MediaCategory_MEDIA_CATEGORY_SUBTITLES:
		return mediaType == "text/srt" || mediaType == "text/vtt"
	case mediagwv1.MediaCategory_MEDIA_CATEGORY_UNSPECIFIED:
		return true
	}
	return false
}

// limit is the largest total_bytes accepted for a category.
func (e *Engine) limit(c mediagwv1.MediaCategory) int64 {
	switch c {
	case mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_IMAGE, mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_IMAGE:
		return imageLimit
	case mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_GIF, mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_GIF:
		return gifLimit
	case mediagwv1.MediaCategory_MEDIA_CATEGORY_TWEET_VIDEO, mediagwv1.MediaCategory_MEDIA_CATEGORY_AMPLIFY_VIDEO,
		mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_VIDEO:
		return min(e.cfg.MaxVideoBytes, e.cfg.MaxUploadBytes)
	}
	return e.cfg.MaxUploadBytes
}

// validateStart checks an UploadStart before anything goes to X and returns
// the upload as the backend takes it.
func (e *Engine) validateStart(st *mediagwv1.UploadStart) (backend.Spec, error) {
	mt := strings.ToLower(strings.TrimSpace(st.GetMediaType()))
	if mt == "" {
		return backend.Spec{}, apierr.Invalidf("media_type is required")
	}
	if !mediaTypes[mt] {
		return backend.Spec{}, apierr.Invalidf("media_type %s is not one of X's media types", apierr.Quote(st.GetMediaType()))
	}
	cat := st.GetMediaCategory()
	if _, known := categoryNames[cat]; !known && cat != mediagwv1.MediaCategory_MEDIA_CATEGORY_UNSPECIFIED {
		return backend.Spec{}, apierr.Invalidf("media_category %d is not a known category", cat)
	}
	if cat == mediagwv1.MediaCategory_MEDIA_CATEGORY_UNSPECIFIED {
		cat = deriveCategory(mt)
	}
	if !compatible(mt, cat) {
		return backend.Spec{}, apierr.Invalidf("media_category %s does not accept media_type %s", categoryNames[cat], mt)
	}
	total := st.GetTotalBytes()
	switch {
	case total < 0:
		return backend.Spec{}, apierr.Invalidf("total_bytes must not be negative, got %d", total)
	case total == 0 && e.spool == nil:
		return backend.Spec{}, apierr.Invalidf("total_bytes must be greater than 0, got 0 (uploads of unknown size need a spool directory, which is off)")
	}
	if lim := e.limit(cat); total > lim {
		return backend.Spec{}, apierr.Invalidf("total_bytes %d exceeds the %s limit of %d bytes", total, categoryLabel(cat), lim)
	}
	if n := len(st.GetAdditionalOwners()); n > maxOwners {
		return backend.Spec{}, apierr.Invalidf("additional_owners has %d entries, X allows at most %d", n, maxOwners)
	}
	for _, o := range st.GetAdditionalOwners() {
		if _, err := strconv.ParseUint(o, 10, 64); err != nil {
			return backend.Spec{}, apierr.Invalidf("additional_owners entry %s is not an X user id", apierr.Quote(o))
		}
	}
	return backend.Spec{
		MediaType:        mt,
		Category:         categoryNames[cat],
		TotalBytes:       total,
		AdditionalOwners: st.GetAdditionalOwners(),
		Shared:           st.GetShared(),
	}, nil
}

// categoryEnum is the enum of X's category name.
func categoryEnum(name string) mediagwv1.MediaCategory {
	c, _ := ParseCategory(name)
	return c
}

func categoryLabel(c mediagwv1.MediaCategory) string {
	if n, ok := categoryNames[c]; ok {
		return n
	}
	return "X"
}

// signatures recognise media types by their first bytes.
var signatures = []struct {
	mediaType string
	match     func(b []byte) bool
}{
	{"video/mp4", func(b []byte) bool { return len(b) >= 8 && string(b[4:8]) == "ftyp" }},
	{"video/webm", func(b []byte) bool { return bytes.HasPrefix(b, []byte{0x1A, 0x45, 0xDF, 0xA3}) }},
	{"image/png", func(b []byte) bool { return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) }},
	{"image/jpeg", func(b []byte) bool { return bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}) }},
	{"image/gif", func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a"))
	}},
	{"image/webp", func(b []byte) bool { return len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP" }},
	{"image/bmp", func(b []byte) bool { return bytes.HasPrefix(b, []byte("BM")) }},
	{"image/tiff", func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("II*\x00")) || bytes.HasPrefix(b, []byte("MM\x00*"))
	}},
}

// sniffFamily maps a declared type to the signature that must match; types
// not listed (mp2t, subtitles, 3D models) are not sniffed.
var sniffFamily = map[string]string{
	"video/mp4": "video/mp4", "video/quicktime": "video/mp4", "video/webm": "video/webm",
	"image/png": "image/png", "image/jpeg": "image/jpeg", "image/pjpeg": "image/jpeg",
	"image/gif": "image/gif", "image/webp": "image/webp", "image/bmp": "image/bmp", "image/tiff": "image/tiff",
}

// DetectMediaType names the media type the first bytes of a file look like
// (at least the first 16 bytes are needed to tell every known format), or
// returns "" when they match none of the formats mediagw recognises. It is
// the check uploads are held to: a file whose declared media_type is not
// of the detected format is refused.
func DetectMediaType(head []byte) string { return identify(head) }

// identify names the format the bytes look like, or "" when unknown.
func identify(head []byte) string {
	for _, s := range signatures {
		if s.match(head) {
			return s.mediaType
		}
	}
	return ""
}

// sniff checks that the first bytes of the media match its declared type.
// head holds the first min(total, sniffLen) bytes.
func sniff(mediaType string, head []byte) error {
	want, ok := sniffFamily[mediaType]
	if !ok {
		return nil
	}
	for _, s := range signatures {
		if s.mediaType == want && s.match(head) {
			return nil
		}
	}
	if got := identify(head); got != "" {
		return apierr.Invalidf("media_type is %s but the bytes are %s", mediaType, got)
	}
	return apierr.Invalidf("media_type is %s but the bytes are not %s (unrecognised format)", mediaType, describe(want))
}

func describe(mediaType string) string {
	return fmt.Sprintf("a %s file", strings.TrimPrefix(strings.TrimPrefix(mediaType, "video/"), "image/"))
}
