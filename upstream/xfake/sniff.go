package xfake

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// sniffLen is how many leading bytes of the assembled media are kept for
// sniffing.
const sniffLen = 64

// sniffed is what the leading bytes say about the media.
type sniffed struct {
	ok            bool // the bytes match the declared media_type
	width, height int  // for PNG and GIF; 0 otherwise
}

// sniff checks head, the first bytes of the media, against the magic numbers
// of mediaType. text/srt (and text/plain, v1.1's SRT from one client) has no
// magic number and always matches.
func sniff(mediaType string, head []byte) sniffed {
	has := func(off int, magic string) bool {
		return len(head) >= off+len(magic) && string(head[off:off+len(magic)]) == magic
	}
	switch mediaType {
	case "video/mp4":
		return sniffed{ok: has(4, "ftyp")}
	case "video/quicktime":
		return sniffed{ok: has(4, "ftyp") || has(4, "moov") || has(4, "mdat") || has(4, "wide") || has(4, "free")}
	case "video/webm":
		return sniffed{ok: has(0, "\x1a\x45\xdf\xa3")}
	case "video/mp2t":
		return sniffed{ok: has(0, "\x47")}
	case "image/gif":
		s := sniffed{ok: has(0, "GIF87a") || has(0, "GIF89a")}
		if s.ok && len(head) >= 10 {
			s.width = int(binary.LittleEndian.Uint16(head[6:8]))
			s.height = int(binary.LittleEndian.Uint16(head[8:10]))
		}
		return s
	case "image/png":
		s := sniffed{ok: has(0, "\x89PNG\r\n\x1a\n")}
		if s.ok && has(12, "IHDR") && len(head) >= 24 {
			s.width = int(binary.BigEndian.Uint32(head[16:20]))
			s.height = int(binary.BigEndian.Uint32(head[20:24]))
		}
		return s
	case "image/jpeg", "image/pjpeg":
		return sniffed{ok: has(0, "\xff\xd8\xff")}
	case "image/webp":
		return sniffed{ok: has(0, "RIFF") && has(8, "WEBP")}
	case "image/bmp":
		return sniffed{ok: has(0, "BM")}
	case "image/tiff":
		return sniffed{ok: has(0, "II*\x00") || has(0, "MM\x00*")}
	case "text/vtt":
		return sniffed{ok: bytes.HasPrefix(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), []byte("WEBVTT"))}
	case "model/gltf-binary":
		return sniffed{ok: has(0, "glTF")}
	case "model/vnd.usdz+zip":
		return sniffed{ok: has(0, "PK\x03\x04")}
	}
	return sniffed{ok: true}
}

// The media types and categories X accepts (FACTS §2, OpenAPI 2.167).
var (
	mediaTypes = []string{
		"video/mp4", "video/webm", "video/mp2t", "video/quicktime",
		"text/srt", "text/vtt",
		"image/jpeg", "image/gif", "image/bmp", "image/png", "image/webp", "image/pjpeg", "image/tiff",
		"model/gltf-binary", "model/vnd.usdz+zip",
	}
	mediaCategories = []string{
		"amplify_video", "tweet_gif", "tweet_image", "tweet_video",
		"dm_gif", "dm_image", "dm_video", "subtitles",
	}
)

func isImageType(t string) bool { return strings.HasPrefix(t, "image/") }

// The one-shot POST /2/media/upload takes images and subtitles only
// (MediaUploadRequestOneShot, OpenAPI 2.167): no GIF, no video.
var (
	oneShotCategories = []string{"tweet_image", "dm_image", "subtitles"}
	oneShotTypes      = []string{"text/srt", "text/vtt", "image/jpeg", "image/bmp", "image/png", "image/webp", "image/pjpeg", "image/tiff"}
)

// sniffType names the media type whose magic number head starts with, among
// the types a one-shot upload can carry, or "" when none matches. JPEG is
// reported as image/jpeg, never image/pjpeg.
func sniffType(head []byte) string {
	for _, t := range []string{"image/gif", "image/png", "image/jpeg", "image/webp", "image/bmp", "image/tiff", "text/vtt"} {
		if sniff(t, head).ok {
			return t
		}
	}
	return ""
}

// v11Category maps a v1.1 media_category to its canonical name. v1.1 took
// the documented snake_case names and two other spellings clients sent for
// years: CamelCase (TweetVideo, TweetGif: twitter-api-v2's v1 upload) and
// joined lower case (tweetvideo: X's own large-video sample). Any other
// spelling is refused. The v2 dialects take the snake_case names only.
func v11Category(s string) (string, bool) {
	for _, c := range mediaCategories {
		if s == c || s == camelCase(c) || s == strings.ReplaceAll(c, "_", "") {
			return c, true
		}
	}
	return "", false
}

// camelCase turns tweet_video into TweetVideo.
func camelCase(snake string) string {
	parts := strings.Split(snake, "_")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}
