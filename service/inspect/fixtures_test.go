package inspect_test

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/inspect"
	"github.com/mediagw/mediagw/service/inspect/rules"
)

// Inputs for the fixtures: seconds of testsrc and sine at tiny sizes.
func src(d, size, rate string) []string {
	return []string{"-f", "lavfi", "-i", "testsrc=duration=" + d + ":size=" + size + ":rate=" + rate}
}

func sine(d string) []string { return []string{"-f", "lavfi", "-i", "sine=duration=" + d} }

func join(parts ...[]string) []string { return slices.Concat(parts...) }

var (
	x264  = []string{"-c:v", "libx264", "-preset", "veryfast"}
	aac   = []string{"-c:a", "aac"}
	fast  = []string{"-movflags", "+faststart"}
	av2s  = join(src("2", "160x120", "30"), sine("2"))
	yuv   = []string{"-pix_fmt", "yuv420p"}
	utf8S = "1\n00:00:01,000 --> 00:00:02,500\nHello\n\n2\n00:00:03,000 --> 00:00:04,000\nWörld, ça va\nline two\n\n"
)

// fixture is one file made by ffmpeg (or written, for subtitles), what the
// rules must say about it, and whether ffprobe can be asked about it.
type fixture struct {
	name      string
	out       string   // output file name (its extension picks ffmpeg's muxer)
	args      []string // ffmpeg inputs and options
	text      string   // written as is instead (subtitles)
	vttFrom   string   // make this .vtt from an .srt text with ffmpeg
	mediaType string
	category  string
	want      []string // violation reasons at the end, in Check's order
	early     bool     // the violations are decided before the last mdat byte (faststart)
	cut       float64  // keep only this fraction of the bytes (broken files)
	noProbe   bool     // ffprobe cannot describe it (broken files)
}

func fixtures() []fixture {
	return []fixture{
		{name: "h264-aac-faststart", out: "a.mp4", args: join(av2s, x264, yuv, aac, fast), mediaType: "video/mp4", category: "tweet_video"},
		{name: "h264-aac-stereo-48k-25fps", out: "a.mp4", args: join(src("2", "320x180", "25"), sine("2"), x264, yuv, aac, []string{"-ac", "2", "-ar", "48000"}, fast),
			mediaType: "video/mp4", category: "dm_video"},
		{name: "h264-29.97fps", out: "a.mp4", args: join(src("2", "128x72", "30000/1001"), x264, yuv, fast), mediaType: "video/mp4", category: "tweet_video"},
		{name: "h264-baseline", out: "a.mp4", args: join(src("1", "128x72", "25"), x264, yuv, []string{"-profile:v", "baseline"}, fast), mediaType: "video/mp4", category: "tweet_video"},
		{name: "h264-aac-moov-at-end", out: "a.mp4", args: join(av2s, x264, yuv, aac), mediaType: "video/mp4", category: "tweet_video"},
		{name: "fragmented", out: "a.mp4", args: join(av2s, x264, yuv, aac, []string{"-movflags", "frag_keyframe+empty_moov", "-g", "15"}), mediaType: "video/mp4", category: "tweet_video"},
		{name: "mov", out: "a.mov", args: join(av2s, x264, yuv, aac), mediaType: "video/quicktime", category: "amplify_video"},
		{name: "too-long-150s", out: "a.mp4", args: join(src("150", "32x32", "1"), x264, yuv, fast), mediaType: "video/mp4", category: "dm_video",
			want: []string{"VIDEO_TOO_LONG"}, early: true},
		{name: "too-short", out: "a.mp4", args: join(src("0.2", "64x64", "25"), x264, yuv, fast), mediaType: "video/mp4", category: "tweet_video",
			want: []string{"VIDEO_TOO_SHORT"}, early: true},
		{name: "120fps", out: "a.mp4", args: join(src("1", "64x48", "120"), x264, yuv, fast), mediaType: "video/mp4", category: "tweet_video",
			want: []string{"FRAME_RATE_TOO_HIGH"}, early: true},
		{name: "yuv444p", out: "a.mp4", args: join(src("1", "64x48", "25"), x264, []string{"-pix_fmt", "yuv444p"}, fast), mediaType: "video/mp4", category: "tweet_video",
			want: []string{"UNSUPPORTED_CHROMA"}, early: true},
		{name: "10-bit", out: "a.mp4", args: join(src("1", "64x48", "25"), x264, []string{"-pix_fmt", "yuv420p10le"}, fast), mediaType: "video/mp4", category: "tweet_video",
			want: []string{"UNSUPPORTED_BIT_DEPTH"}, early: true},
		{name: "yuv422p10", out: "a.mov", args: join(src("1", "64x48", "25"), x264, []string{"-pix_fmt", "yuv422p10le"}), mediaType: "video/quicktime", category: "tweet_video",
			want: []string{"UNSUPPORTED_CHROMA", "UNSUPPORTED_BIT_DEPTH"}},
		{name: "hevc-hev1", out: "a.mp4", args: join(src("1", "64x48", "25"), []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"}, yuv, fast),
			mediaType: "video/mp4", category: "tweet_video", want: []string{"UNSUPPORTED_VIDEO_CODEC"}, early: true},
		{name: "hevc-main10-hvc1", out: "a.mp4", args: join(src("1", "64x48", "25"), []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-tag:v", "hvc1", "-pix_fmt", "yuv420p10le"}),
			mediaType: "video/mp4", category: "tweet_video", want: []string{"UNSUPPORTED_VIDEO_CODEC", "UNSUPPORTED_BIT_DEPTH"}},
		{name: "mp3-audio", out: "a.mp4", args: join(av2s, x264, yuv, []string{"-c:a", "libmp3lame"}, fast), mediaType: "video/mp4", category: "tweet_video",
			want: []string{"UNSUPPORTED_AUDIO_CODEC"}, early: true},
		{name: "5.1-audio", out: "a.mp4", args: join(src("2", "64x48", "25"), sine("2"), x264, yuv, aac, []string{"-ac", "6"}, fast), mediaType: "video/mp4", category: "tweet_video",
			want: []string{"TOO_MANY_AUDIO_CHANNELS"}, early: true},
		{name: "sar-4-3", out: "a.mp4", args: join(src("1", "64x48", "25"), x264, yuv, []string{"-vf", "setsar=4/3"}, fast), mediaType: "video/mp4", category: "tweet_video",
			want: []string{"NON_SQUARE_PIXELS"}, early: true},
		{name: "aspect-5-1", out: "a.mp4", args: join(src("1", "320x64", "25"), x264, yuv), mediaType: "video/mp4", category: "tweet_video",
			want: []string{"ASPECT_RATIO"}},
		{name: "tiny-16x16", out: "a.mp4", args: join(src("1", "16x16", "25"), x264, yuv, fast), mediaType: "video/mp4", category: "tweet_video",
			want: []string{"DIMENSIONS_TOO_SMALL"}, early: true},
		{name: "huge-2048x1152", out: "a.mp4", args: join(src("0.6", "2048x1152", "5"), x264, []string{"-preset", "ultrafast"}, yuv, fast), mediaType: "video/mp4", category: "tweet_video",
			want: []string{"DIMENSIONS_TOO_LARGE"}, early: true},
		{name: "portrait-1080x1920", out: "a.mp4", args: join(src("0.6", "1080x1920", "5"), x264, []string{"-preset", "ultrafast"}, yuv, fast), mediaType: "video/mp4", category: "tweet_video"},
		{name: "png-as-video", out: "a.png", args: join(src("1", "64x48", "1"), []string{"-frames:v", "1"}), mediaType: "video/mp4", category: "tweet_video",
			want: []string{"FORMAT_MISMATCH"}, early: true},
		{name: "truncated-mp4", out: "a.mp4", args: join(av2s, x264, yuv, aac, fast), mediaType: "video/mp4", category: "tweet_video",
			want: []string{"MALFORMED_MEDIA"}, cut: 0.6, noProbe: true},
		{name: "truncated-before-moov", out: "a.mp4", args: join(av2s, x264, yuv, aac), mediaType: "video/mp4", category: "tweet_video",
			want: []string{"MALFORMED_MEDIA"}, cut: 0.7, noProbe: true},

		{name: "gif", out: "a.gif", args: src("0.5", "48x32", "10"), mediaType: "image/gif", category: "tweet_gif"},
		{name: "gif-355-frames", out: "a.gif", args: src("7.1", "32x32", "50"), mediaType: "image/gif", category: "tweet_gif",
			want: []string{"GIF_TOO_MANY_FRAMES"}, early: true},
		{name: "gif-1300-wide", out: "a.gif", args: src("0.2", "1300x40", "10"), mediaType: "image/gif", category: "dm_gif",
			want: []string{"DIMENSIONS_TOO_LARGE"}, early: true},
		{name: "animated-gif-as-image", out: "a.gif", args: src("0.3", "32x32", "10"), mediaType: "image/gif", category: "tweet_image",
			want: []string{"GIF_TOO_MANY_FRAMES"}, early: true},
		{name: "truncated-gif", out: "a.gif", args: src("1", "32x32", "10"), mediaType: "image/gif", category: "tweet_gif",
			want: []string{"MALFORMED_MEDIA"}, cut: 0.5, noProbe: true},

		{name: "png", out: "a.png", args: join(src("1", "64x48", "1"), []string{"-frames:v", "1"}), mediaType: "image/png", category: "tweet_image"},
		{name: "jpeg", out: "a.jpg", args: join(src("1", "64x48", "1"), []string{"-frames:v", "1"}), mediaType: "image/jpeg", category: "dm_image"},
		{name: "webp", out: "a.webp", args: join(src("1", "64x48", "1"), []string{"-frames:v", "1"}), mediaType: "image/webp", category: "tweet_image"},
		{name: "bmp", out: "a.bmp", args: join(src("1", "64x48", "1"), []string{"-frames:v", "1"}), mediaType: "image/bmp", category: "tweet_image"},
		{name: "tiff", out: "a.tiff", args: join(src("1", "64x48", "1"), []string{"-frames:v", "1"}), mediaType: "image/tiff", category: "tweet_image"},
		{name: "png-over-5MiB", out: "a.png", args: []string{"-f", "lavfi", "-i", "color=c=gray:s=1500x1500,format=rgb24,noise=alls=100:allf=t", "-frames:v", "1"},
			mediaType: "image/png", category: "tweet_image", want: []string{"IMAGE_TOO_LARGE"}, early: true},
		{name: "truncated-png-header", out: "a.png", args: join(src("1", "64x48", "1"), []string{"-frames:v", "1"}), mediaType: "image/png", category: "tweet_image",
			want: []string{"MALFORMED_MEDIA"}, cut: 0.05, noProbe: true},
		{name: "png-cut-in-signature", out: "a.png", args: join(src("1", "64x48", "1"), []string{"-frames:v", "1"}), mediaType: "image/png", category: "tweet_image",
			want: []string{"MALFORMED_MEDIA"}, cut: 0.01, noProbe: true},

		{name: "srt", out: "a.srt", text: utf8S, mediaType: "text/srt", category: "subtitles"},
		{name: "vtt-from-srt", out: "a.vtt", vttFrom: utf8S, mediaType: "text/vtt", category: "subtitles"},
		{name: "srt-latin1", out: "a.srt", text: "1\n00:00:01,000 --> 00:00:02,000\nCaf\xe9\n\n", mediaType: "text/srt", category: "subtitles",
			want: []string{"SUBTITLES_NOT_UTF8"}, noProbe: true},
		{name: "srt-bad-timing", out: "a.srt", text: "1\n00:00:01,000 -> 00:00:02,000\nHi\n\n2\n00:00:03,000 --> 00:00:04,000\nThere\n\n", mediaType: "text/srt", category: "subtitles",
			want: []string{"SUBTITLES_MALFORMED"}, noProbe: true},
		{name: "vtt-no-header", out: "a.vtt", text: "00:01.000 --> 00:02.000\nHi\n", mediaType: "text/vtt", category: "subtitles",
			want: []string{"SUBTITLES_MALFORMED"}, noProbe: true},
	}
}

// TestFixturesAgreeWithFFprobe makes every fixture, inspects it in random
// writes, compares the report with ffprobe and checks the rules' verdict.
func TestFixturesAgreeWithFFprobe(t *testing.T) {
	needFFmpeg(t)
	for _, f := range fixtures() {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, f.out)
			switch {
			case f.text != "":
				if err := os.WriteFile(path, []byte(f.text), 0o600); err != nil {
					t.Fatal(err)
				}
			case f.vttFrom != "":
				if err := os.WriteFile(filepath.Join(dir, "in.srt"), []byte(f.vttFrom), 0o600); err != nil {
					t.Fatal(err)
				}
				ffmpeg(t, dir, "-i", "in.srt", f.out)
			default:
				ffmpeg(t, dir, append(f.args, f.out)...)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if f.cut > 0 {
				b = b[:int(float64(len(b))*f.cut)]
			}
			r := inspectChunks(t, f.name, f.mediaType, b, int64(len(b)))
			t.Logf("%d bytes: %+v", len(b), r)
			if !r.Ended {
				t.Errorf("Ended = false after TotalBytes")
			}
			got := reasons(rules.Check(f.category, r, true))
			if !slices.Equal(got, f.want) {
				t.Errorf("violations = %v, want %v (%+v)", got, f.want, rules.Check(f.category, r, true))
			}
			if f.early {
				checkEarly(t, f, b, r)
			}
			neverEarlierThanTheEnd(t, f, b)
			if f.noProbe {
				return
			}
			compareProbe(t, f, path, r)
		})
	}
}

// checkEarly asserts that the violations are decided before the media's
// bulk went by (final=false): for a faststart movie by the end of its
// moov, before any mdat byte; otherwise before the last byte.
func checkEarly(t *testing.T, f fixture, b []byte, r inspect.Report) {
	t.Helper()
	limit := len(b) - 1
	if r.Format == inspect.FormatMP4 || r.Format == inspect.FormatMOV {
		if !r.Faststart || r.MoovOffset < 0 {
			t.Fatalf("early fixture is not faststart: %+v", r)
		}
		limit = int(r.MoovOffset) + int(binary.BigEndian.Uint32(b[r.MoovOffset:]))
	}
	part := inspectChunks(t, f.name+"/early", f.mediaType, b[:limit], int64(len(b)))
	if part.Ended {
		t.Fatalf("the prefix ended the stream")
	}
	if got := reasons(rules.Check(f.category, part, false)); !slices.Equal(got, f.want) {
		t.Errorf("after %d of %d bytes: violations = %v, want %v", limit, len(b), got, f.want)
	}
}

func reasons(vs []rules.Violation) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.Reason)
	}
	return out
}

// compareProbe checks the report against ffprobe's view of the file.
func compareProbe(t *testing.T, f fixture, path string, r inspect.Report) {
	t.Helper()
	var extra []string
	switch r.Format {
	case inspect.FormatGIF:
		extra = []string{"-count_frames"}
	case inspect.FormatSRT, inspect.FormatVTT:
		extra = []string{"-count_packets"}
	}
	p := ffprobe(t, path, extra...)
	eq := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, ffprobe says %v", what, got, want)
		}
	}
	for _, s := range p.Streams {
		switch {
		case s.CodecType == "video" && (r.Format == inspect.FormatMP4 || r.Format == inspect.FormatMOV):
			v := r.Video
			eq("video codec", v.Codec, s.CodecName)
			eq("codec tag", v.CodecTag, s.CodecTag)
			eq("profile", v.Profile, s.Profile)
			eq("level", v.Level, s.Level)
			eq("width", v.Width, s.Width)
			eq("height", v.Height, s.Height)
			eq("pix_fmt", v.PixFmt, s.PixFmt)
			if s.SAR != "" && s.SAR != "N/A" && s.SAR != "0:1" {
				eq("sample_aspect_ratio", v.SAR(), s.SAR)
			}
			want := rate(t, s.AvgFrameRate)
			if math.Abs(v.FrameRate()-want) > want*0.01 {
				t.Errorf("frame rate = %.3f, ffprobe says %s", v.FrameRate(), s.AvgFrameRate)
			}
			d := seconds(t, p.Format.Duration)
			if frame := time.Duration(float64(time.Second) / want); absDur(r.Duration-d) > frame {
				t.Errorf("duration = %v, ffprobe says %v (tolerance one frame, %v)", r.Duration, d, frame)
			}
		case s.CodecType == "audio":
			a := r.Audio
			eq("audio codec", a.Codec, s.CodecName)
			if s.CodecName == "aac" {
				eq("audio profile", a.Profile, s.Profile)
			}
			if a.Channels != 0 || s.CodecName != "mp3" { // see inspect.Audio.Channels
				eq("channels", a.Channels, s.Channels)
			}
			eq("sample rate", strconv.Itoa(a.SampleRate), s.SampleRate)
		case r.Format == inspect.FormatGIF:
			eq("codec", "gif", s.CodecName)
			eq("width", r.Width, s.Width)
			eq("height", r.Height, s.Height)
			eq("frames", strconv.Itoa(r.Frames), s.NbReadFrames)
		case r.Format == inspect.FormatSRT || r.Format == inspect.FormatVTT:
			eq("codec", map[inspect.Format]string{inspect.FormatSRT: "subrip", inspect.FormatVTT: "webvtt"}[r.Format], s.CodecName)
			eq("cues", strconv.Itoa(r.Subtitles.Cues), s.NbReadPackets)
		case s.CodecType == "video":
			name := map[inspect.Format]string{inspect.FormatPNG: "png", inspect.FormatJPEG: "mjpeg", inspect.FormatWebP: "webp",
				inspect.FormatBMP: "bmp", inspect.FormatTIFF: "tiff"}[r.Format]
			eq("codec", name, s.CodecName)
			eq("width", r.Width, s.Width)
			eq("height", r.Height, s.Height)
		}
	}
	if n := len(p.Streams); n == 0 {
		t.Errorf("ffprobe found no stream")
	}
	if strings.Contains(p.Format.FormatName, "mov") != (r.Format == inspect.FormatMP4 || r.Format == inspect.FormatMOV) {
		t.Errorf("format %s, ffprobe says %s", r.Format, p.Format.FormatName)
	}
}

func rate(t *testing.T, s string) float64 {
	t.Helper()
	n, d, ok := strings.Cut(s, "/")
	a, err1 := strconv.ParseFloat(n, 64)
	b, err2 := strconv.ParseFloat(d, 64)
	if !ok || err1 != nil || err2 != nil || b == 0 {
		t.Fatalf("ffprobe frame rate %q", s)
	}
	return a / b
}

func seconds(t *testing.T, s string) time.Duration {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q", s)
	}
	return time.Duration(f * float64(time.Second))
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// neverEarlierThanTheEnd feeds b in 4 KiB writes and checks that what
// Check reports before the end (final=false) is always part of the final
// verdict: nothing is refused early that the whole file would pass.
func neverEarlierThanTheEnd(t *testing.T, f fixture, b []byte) {
	t.Helper()
	in := inspect.New(f.mediaType, int64(len(b)))
	for off := 0; off < len(b); off += 4096 {
		in.Write(b[off:min(off+4096, len(b))])
		for _, v := range rules.Check(f.category, in.Report(), false) {
			if !slices.Contains(f.want, v.Reason) {
				t.Fatalf("after %d of %d bytes: %s (%s) is not in the final verdict %v", min(off+4096, len(b)), len(b), v.Reason, v.Description, f.want)
			}
		}
	}
}

// TestUnknownSizeFragmented: with the size unknown, a fragmented movie's
// duration and frame rate become known at Finish, and agree with ffprobe.
func TestUnknownSizeFragmented(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	ffmpeg(t, dir, join(src("3", "64x48", "25"), x264, yuv, []string{"-g", "10", "-movflags", "frag_keyframe+empty_moov", "f.mp4"})...)
	b, err := os.ReadFile(filepath.Join(dir, "f.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	in := inspect.New("video/mp4", -1)
	for off := 0; off < len(b); off += 1000 {
		in.Write(b[off:min(off+1000, len(b))])
	}
	r := in.Report()
	if !r.Fragmented || r.Ended || r.Complete || r.Known.Has(inspect.KnownDuration) || r.Known.Has(inspect.KnownFrameRate) {
		t.Fatalf("before Finish: %+v", r)
	}
	if !r.Known.Has(inspect.KnownVideoCodec) || r.Video.Codec != "h264" {
		t.Errorf("codec not known from the empty moov: %+v", r)
	}
	r = in.Finish()
	if !r.Ended || !r.Complete || !r.Known.Has(inspect.KnownDuration|inspect.KnownFrameRate) || r.Problem != "" {
		t.Fatalf("after Finish: %+v", r)
	}
	p := ffprobe(t, filepath.Join(dir, "f.mp4"))
	if d := seconds(t, p.Format.Duration); absDur(r.Duration-d) > 40*time.Millisecond {
		t.Errorf("duration %v, ffprobe says %v", r.Duration, d)
	}
	if fr := r.Video.FrameRate(); math.Abs(fr-25) > 0.25 {
		t.Errorf("frame rate %.2f, want 25", fr)
	}
	if again := in.Finish(); !reflect.DeepEqual(again, r) {
		t.Errorf("a second Finish changed the report")
	}
}
