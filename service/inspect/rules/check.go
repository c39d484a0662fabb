package rules

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mediagw/mediagw/service/inspect"
)

// Violation is one rule the media breaks.
type Violation struct {
	// Reason is the rule, in the ErrorInfo reason style: VIDEO_TOO_LONG,
	// VIDEO_TOO_SHORT, FRAME_RATE_TOO_HIGH, UNSUPPORTED_CHROMA,
	// UNSUPPORTED_BIT_DEPTH, UNSUPPORTED_VIDEO_CODEC,
	// UNSUPPORTED_AUDIO_CODEC, TOO_MANY_AUDIO_CHANNELS,
	// DIMENSIONS_TOO_LARGE, DIMENSIONS_TOO_SMALL, ASPECT_RATIO,
	// NON_SQUARE_PIXELS, GIF_TOO_MANY_FRAMES, GIF_TOO_LARGE,
	// IMAGE_TOO_LARGE, MEDIA_TOO_LARGE, FORMAT_MISMATCH, MALFORMED_MEDIA,
	// SUBTITLES_NOT_UTF8, SUBTITLES_MALFORMED.
	Reason string
	// Field names the inspected value: duration, frame_rate, chroma_format,
	// bit_depth, video_codec, audio_codec, audio_channels, dimensions,
	// aspect_ratio, sample_aspect_ratio, frames, pixel_frames, bytes,
	// format, media, subtitles.
	Field string
	// Limit and Actual are the rule's value and the media's ("140s",
	// "150.2s"); Limit is empty where the rule has no number.
	Limit, Actual string
	// Description is one sentence a caller can act on.
	Description string
}

// Check applies the default profile; see [Profile.Check].
func Check(category string, r inspect.Report, final bool) []Violation {
	return Default().Check(category, r, final)
}

// Check lists the rules of category that r breaks. With final false only
// violations the bytes seen so far already decide are reported (a
// faststart moov decides before any sample arrives), so an engine can
// refuse before INIT. With final true the stream has ended: values still
// unknown are reported as MALFORMED_MEDIA only where X certainly rejects
// the media — a movie without a moov (or without a video track), a
// truncated box, GIF or image header, an image whose header does not
// decode, bytes of no known format, an empty upload, subtitles without a
// cue. A sample table over inspect.MaxTableBytes or a JPEG frame header past
// inspect.MaxImageHeaderBytes stays unknown and is not reported. An
// unknown category has no rules.
func (p Profile) Check(category string, r inspect.Report, final bool) []Violation {
	l, ok := p[strings.ToLower(category)]
	if !ok {
		return nil
	}
	c := checker{l: l, r: r, cat: strings.ToLower(category)}
	c.format(final)
	c.size()
	// Subtitle findings have their own reasons (below).
	subtitles := r.Format == inspect.FormatSRT || r.Format == inspect.FormatVTT
	if r.Problem != "" && !strings.HasPrefix(r.Problem, "internal:") && r.Format != inspect.FormatUnknown && !subtitles {
		c.add("MALFORMED_MEDIA", "media", "", r.Problem, "The media is malformed ("+r.Problem+"); re-encode or re-export it.")
	}
	switch r.Format {
	case inspect.FormatMP4, inspect.FormatMOV:
		c.video()
	case inspect.FormatGIF:
		c.gif()
	case inspect.FormatSRT, inspect.FormatVTT:
		c.subtitles()
	}
	return c.out
}

type checker struct {
	l   Limits
	r   inspect.Report
	cat string
	out []Violation
}

func (c *checker) add(reason, field, limit, actual, desc string) {
	c.out = append(c.out, Violation{Reason: reason, Field: field, Limit: limit, Actual: actual, Description: desc})
}

// declaredFormats maps X's media types to the formats their bytes may have.
var declaredFormats = map[string][]inspect.Format{
	"video/mp4": {inspect.FormatMP4, inspect.FormatMOV}, "video/quicktime": {inspect.FormatMP4, inspect.FormatMOV},
	"video/webm": {inspect.FormatWebM}, "video/mp2t": {inspect.FormatMP2T},
	"image/jpeg": {inspect.FormatJPEG}, "image/pjpeg": {inspect.FormatJPEG}, "image/png": {inspect.FormatPNG},
	"image/gif": {inspect.FormatGIF}, "image/webp": {inspect.FormatWebP}, "image/bmp": {inspect.FormatBMP},
	"image/tiff": {inspect.FormatTIFF}, "text/srt": {inspect.FormatSRT}, "text/vtt": {inspect.FormatVTT},
}

func (c *checker) format(final bool) {
	r := c.r
	if !r.Known.Has(inspect.KnownFormat) {
		if final {
			c.add("MALFORMED_MEDIA", "media", "", "0 bytes", "The upload is empty; send the media's bytes.")
		}
		return
	}
	if r.Format == inspect.FormatUnknown {
		c.add("MALFORMED_MEDIA", "format", strings.Join(c.l.Formats, "|"), "unknown",
			"The bytes are not in any media format X takes; check that the right file is sent.")
		return
	}
	if want, ok := declaredFormats[r.MediaType]; ok && !slices.Contains(want, r.Format) {
		c.add("FORMAT_MISMATCH", "format", r.MediaType, string(r.Format),
			fmt.Sprintf("The bytes are %s but the media type says %s; declare the right media_type.", r.Format, r.MediaType))
		return
	}
	if len(c.l.Formats) > 0 && !slices.Contains(c.l.Formats, string(r.Format)) {
		c.add("FORMAT_MISMATCH", "format", strings.Join(c.l.Formats, "|"), string(r.Format),
			fmt.Sprintf("%s takes %s, not %s; use the matching media_category or convert the media.", c.cat, strings.Join(c.l.Formats, ", "), r.Format))
	}
}

func (c *checker) size() {
	n := c.r.TotalBytes
	if n < 0 || c.r.BytesSeen > n {
		n = c.r.BytesSeen
	}
	if c.l.MaxBytes <= 0 || n <= int64(c.l.MaxBytes) {
		return
	}
	reason := "MEDIA_TOO_LARGE"
	if c.cat == "tweet_image" || c.cat == "dm_image" {
		reason = "IMAGE_TOO_LARGE"
	}
	c.add(reason, "bytes", strconv.FormatInt(int64(c.l.MaxBytes), 10), strconv.FormatInt(n, 10),
		fmt.Sprintf("%s takes at most %d bytes and the media has %d; compress it or use a category with a larger limit.", c.cat, c.l.MaxBytes, n))
}

func (c *checker) video() {
	r, l := c.r, c.l
	known := r.Known.Has
	// A fragmented movie's duration only grows: a partial sum over the
	// limit already decides.
	if known(inspect.KnownDuration) || (r.Fragmented && known(inspect.KnownTracks)) {
		if l.MaxDuration > 0 && r.Duration > time.Duration(l.MaxDuration) {
			c.add("VIDEO_TOO_LONG", "duration", secs(time.Duration(l.MaxDuration)), secs(r.Duration),
				fmt.Sprintf("%s videos may last at most %s and this one lasts %s; trim it (or raise max_duration for an account whose tier allows more).",
					c.cat, secs(time.Duration(l.MaxDuration)), secs(r.Duration)))
		}
	}
	if known(inspect.KnownDuration) && l.MinDuration > 0 && r.Duration < time.Duration(l.MinDuration) {
		c.add("VIDEO_TOO_SHORT", "duration", secs(time.Duration(l.MinDuration)), secs(r.Duration),
			fmt.Sprintf("Videos must last at least %s and this one lasts %s.", secs(time.Duration(l.MinDuration)), secs(r.Duration)))
	}
	if known(inspect.KnownTracks) && r.VideoTracks == 0 {
		c.add("MALFORMED_MEDIA", "video_codec", "", "no video track", "The movie has no video track; X takes video with a picture only.")
	}
	v := r.Video
	if known(inspect.KnownVideoCodec) {
		if len(l.VideoCodecs) > 0 && !slices.Contains(l.VideoCodecs, v.Codec) {
			c.add("UNSUPPORTED_VIDEO_CODEC", "video_codec", strings.Join(l.VideoCodecs, "|"), v.Codec,
				fmt.Sprintf("The video is %s; re-encode it as %s (H.264 High profile recommended).", v.Codec, strings.Join(l.VideoCodecs, " or ")))
		}
		if len(l.ChromaFormats) > 0 && !slices.Contains(l.ChromaFormats, v.ChromaFormat) {
			c.add("UNSUPPORTED_CHROMA", "chroma_format", strings.Join(l.ChromaFormats, "|"), v.ChromaFormat,
				fmt.Sprintf("The video's chroma is %s (%s); re-encode it with pix_fmt yuv420p.", v.ChromaFormat, v.PixFmt))
		}
		if l.MaxBitDepth > 0 && v.BitDepth > l.MaxBitDepth {
			c.add("UNSUPPORTED_BIT_DEPTH", "bit_depth", strconv.Itoa(l.MaxBitDepth), strconv.Itoa(v.BitDepth),
				fmt.Sprintf("The video has %d-bit samples; re-encode it at %d bits (pix_fmt yuv420p).", v.BitDepth, l.MaxBitDepth))
		}
	}
	if known(inspect.KnownDimensions) {
		c.dimensions(v.Width, v.Height)
		if known(inspect.KnownPixelAspect) && v.Height > 0 && v.SARDen > 0 {
			dar := float64(v.Width) * float64(v.SARNum) / float64(v.SARDen) / float64(v.Height)
			if (l.MinAspectRatio > 0 && dar < float64(l.MinAspectRatio)*0.999) || (l.MaxAspectRatio > 0 && dar > float64(l.MaxAspectRatio)*1.001) {
				c.add("ASPECT_RATIO", "aspect_ratio", ratio(float64(l.MinAspectRatio))+"–"+ratio(float64(l.MaxAspectRatio)), ratio(dar),
					fmt.Sprintf("The picture's aspect ratio is %s; X takes %s to %s, so crop or pad it.", ratio(dar), ratio(float64(l.MinAspectRatio)), ratio(float64(l.MaxAspectRatio))))
			}
		}
	}
	if known(inspect.KnownPixelAspect) && l.SquarePixels && v.SARNum != v.SARDen {
		c.add("NON_SQUARE_PIXELS", "sample_aspect_ratio", "1:1", v.SAR(),
			fmt.Sprintf("The video's pixels are not square (sample aspect %s); scale it to square pixels (setsar=1).", v.SAR()))
	}
	if known(inspect.KnownFrameRate) && l.MaxFrameRate > 0 && v.FrameRate() > l.MaxFrameRate+0.01 {
		c.add("FRAME_RATE_TOO_HIGH", "frame_rate", fps(l.MaxFrameRate), fps(v.FrameRate()),
			fmt.Sprintf("The video runs at %s fps; X takes at most %s fps, so re-encode it at a lower rate.", fps(v.FrameRate()), fps(l.MaxFrameRate)))
	}
	if known(inspect.KnownAudio) && r.AudioTracks > 0 {
		a := r.Audio
		if key := AudioKey(a); len(l.AudioCodecs) > 0 && !slices.Contains(l.AudioCodecs, key) {
			c.add("UNSUPPORTED_AUDIO_CODEC", "audio_codec", strings.Join(l.AudioCodecs, "|"), key,
				fmt.Sprintf("The audio is %s; re-encode it as %s.", key, strings.Join(l.AudioCodecs, " or ")))
		}
		if l.MaxAudioChannels > 0 && a.Channels > l.MaxAudioChannels {
			c.add("TOO_MANY_AUDIO_CHANNELS", "audio_channels", strconv.Itoa(l.MaxAudioChannels), strconv.Itoa(a.Channels),
				fmt.Sprintf("The audio has %d channels; X takes mono or stereo, so downmix it.", a.Channels))
		}
	}
}

// dimensions checks the long and the short side against the limits.
func (c *checker) dimensions(w, h int) {
	l := c.l
	long, short := max(w, h), min(w, h)
	if l.MinWidth > 0 || l.MinHeight > 0 {
		if short < min(l.MinWidth, l.MinHeight) || long < max(l.MinWidth, l.MinHeight) {
			c.add("DIMENSIONS_TOO_SMALL", "dimensions", fmt.Sprintf("%dx%d", l.MinWidth, l.MinHeight), fmt.Sprintf("%dx%d", w, h),
				fmt.Sprintf("The picture is %dx%d; X takes at least %dx%d, so scale it up.", w, h, l.MinWidth, l.MinHeight))
		}
	}
	if l.MaxWidth > 0 && l.MaxHeight > 0 && (long > max(l.MaxWidth, l.MaxHeight) || short > min(l.MaxWidth, l.MaxHeight)) {
		c.add("DIMENSIONS_TOO_LARGE", "dimensions", fmt.Sprintf("%dx%d", l.MaxWidth, l.MaxHeight), fmt.Sprintf("%dx%d", w, h),
			fmt.Sprintf("The picture is %dx%d; X takes at most %dx%d, so scale it down.", w, h, l.MaxWidth, l.MaxHeight))
	}
}

func (c *checker) gif() {
	r, l := c.r, c.l
	if r.Known.Has(inspect.KnownDimensions) {
		c.dimensions(r.Width, r.Height)
	}
	// The frame count only grows: over the limit decides before the end.
	if l.MaxFrames > 0 && r.Frames > l.MaxFrames {
		desc := fmt.Sprintf("The GIF has %d frames; X takes at most %d, so drop frames.", r.Frames, l.MaxFrames)
		if l.MaxFrames == 1 {
			desc = "The GIF is animated; upload it as tweet_gif or dm_gif."
		}
		if !r.Known.Has(inspect.KnownFrames) {
			desc = strings.Replace(desc, "has", "has more than", 1)
		}
		c.add("GIF_TOO_MANY_FRAMES", "frames", strconv.Itoa(l.MaxFrames), strconv.Itoa(r.Frames), desc)
	}
	if px := int64(r.Width) * int64(r.Height) * int64(r.Frames); l.MaxPixelFrames > 0 && px > l.MaxPixelFrames {
		c.add("GIF_TOO_LARGE", "pixel_frames", strconv.FormatInt(l.MaxPixelFrames, 10), strconv.FormatInt(px, 10),
			fmt.Sprintf("The GIF's width × height × frames is %d; X takes at most %d, so make it smaller or shorter.", px, l.MaxPixelFrames))
	}
}

func (c *checker) subtitles() {
	s := c.r.Subtitles
	if s.BadUTF8Line > 0 {
		c.add("SUBTITLES_NOT_UTF8", "subtitles", "UTF-8", fmt.Sprintf("line %d", s.BadUTF8Line),
			fmt.Sprintf("Line %d of the subtitles is not UTF-8; save the file as UTF-8.", s.BadUTF8Line))
	}
	if s.MalformedLine > 0 {
		c.add("SUBTITLES_MALFORMED", "subtitles", string(c.r.Format), fmt.Sprintf("line %d", s.MalformedLine),
			fmt.Sprintf("Line %d of the subtitles is malformed: %s.", s.MalformedLine, s.MalformedReason))
	}
}

// AudioKey names an audio track as audio_codecs does: "aac-lc", "aac-he",
// "aac-hev2", else the codec name.
func AudioKey(a inspect.Audio) string {
	if a.Codec != "aac" {
		return a.Codec
	}
	switch a.ObjectType {
	case 2:
		return "aac-lc"
	case 5:
		return "aac-he"
	case 29:
		return "aac-hev2"
	case 0:
		return "aac"
	}
	return "aac-" + strings.ToLower(strings.ReplaceAll(a.Profile, " ", "-"))
}

// secs writes a duration as seconds with at most one decimal: "140s", "150.2s".
func secs(d time.Duration) string {
	s := strconv.FormatFloat(math.Round(d.Seconds()*10)/10, 'f', -1, 64)
	return s + "s"
}

func fps(f float64) string { return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64) }

// ratio writes an aspect ratio as "w:1" or "1:h".
func ratio(f float64) string {
	if f >= 1 || f == 0 {
		return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64) + ":1"
	}
	return "1:" + strconv.FormatFloat(math.Round(100/f)/100, 'f', -1, 64)
}
