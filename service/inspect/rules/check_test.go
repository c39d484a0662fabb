package rules

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mediagw/mediagw/service/inspect"
)

// video is a report of a compliant, faststart H.264/AAC-LC movie whose
// moov has been seen but not yet all of its bytes.
func video() inspect.Report {
	return inspect.Report{
		MediaType: "video/mp4", TotalBytes: 10 << 20, BytesSeen: 4096, Format: inspect.FormatMP4,
		Known: inspect.KnownFormat | inspect.KnownTracks | inspect.KnownLayout | inspect.KnownDuration | inspect.KnownDimensions |
			inspect.KnownPixelAspect | inspect.KnownVideoCodec | inspect.KnownFrameRate | inspect.KnownAudio,
		Complete: true, Faststart: true, MoovOffset: 32, Duration: 30 * time.Second, VideoTracks: 1, AudioTracks: 1,
		Video: inspect.Video{Codec: "h264", CodecTag: "avc1", Profile: "High", Level: 40, ChromaFormat: "4:2:0", BitDepth: 8, PixFmt: "yuv420p",
			Width: 1280, Height: 720, SARNum: 1, SARDen: 1, FrameRateNum: 30, FrameRateDen: 1},
		Audio: inspect.Audio{Codec: "aac", CodecTag: "mp4a", ObjectType: 2, Profile: "LC", Channels: 2, SampleRate: 48000},
		Width: 1280, Height: 720,
	}
}

func gif() inspect.Report {
	return inspect.Report{MediaType: "image/gif", TotalBytes: 1 << 20, BytesSeen: 1 << 20, Ended: true, Format: inspect.FormatGIF,
		Known: inspect.KnownFormat | inspect.KnownDimensions | inspect.KnownFrames, Complete: true, Width: 480, Height: 270, Frames: 100}
}

func image() inspect.Report {
	return inspect.Report{MediaType: "image/png", TotalBytes: 1 << 20, BytesSeen: 64, Format: inspect.FormatPNG,
		Known: inspect.KnownFormat | inspect.KnownDimensions, Complete: true, Width: 800, Height: 600}
}

func subs() inspect.Report {
	return inspect.Report{MediaType: "text/srt", TotalBytes: 100, BytesSeen: 100, Ended: true, Format: inspect.FormatSRT,
		Known: inspect.KnownFormat | inspect.KnownCues, Complete: true, Subtitles: inspect.Subtitles{Cues: 3}}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		category string
		r        func() inspect.Report
		final    bool
		want     []string
		limit    string // of the first violation, when set
		actual   string
	}{
		{name: "compliant video", category: "tweet_video", r: video},
		{name: "compliant dm video", category: "dm_video", r: video},
		{name: "compliant gif", category: "tweet_gif", r: gif, final: true},
		{name: "compliant image", category: "tweet_image", r: image},
		{name: "compliant subtitles", category: "subtitles", r: subs, final: true},
		{name: "unknown category has no rules", category: "nope", r: func() inspect.Report { r := video(); r.Duration = time.Hour; return r }},

		{name: "too long for dm", category: "dm_video", r: func() inspect.Report { r := video(); r.Duration = 150200 * time.Millisecond; return r },
			want: []string{"VIDEO_TOO_LONG"}, limit: "140s", actual: "150.2s"},
		{name: "too long for tweet", category: "tweet_video", r: func() inspect.Report { r := video(); r.Duration = 21 * time.Minute; return r },
			want: []string{"VIDEO_TOO_LONG"}, limit: "1200s", actual: "1260s"},
		{name: "duration unknown decides nothing", category: "dm_video", r: func() inspect.Report {
			r := video()
			r.Duration, r.Known = time.Hour, r.Known&^inspect.KnownDuration
			return r
		}},
		{name: "fragmented partial sum over the limit decides", category: "dm_video", r: func() inspect.Report {
			r := video()
			r.Fragmented, r.Duration, r.Known = true, 141*time.Second, r.Known&^inspect.KnownDuration
			return r
		}, want: []string{"VIDEO_TOO_LONG"}},
		{name: "too short", category: "tweet_video", r: func() inspect.Report { r := video(); r.Duration = 400 * time.Millisecond; return r },
			want: []string{"VIDEO_TOO_SHORT"}, limit: "0.5s", actual: "0.4s"},
		{name: "120 fps", category: "tweet_video", r: func() inspect.Report { r := video(); r.Video.FrameRateNum = 120; return r },
			want: []string{"FRAME_RATE_TOO_HIGH"}, limit: "60", actual: "120"},
		{name: "59.94 fps passes", category: "tweet_video", r: func() inspect.Report {
			r := video()
			r.Video.FrameRateNum, r.Video.FrameRateDen = 60000, 1001
			return r
		}},
		{name: "4:4:4", category: "tweet_video", r: func() inspect.Report { r := video(); r.Video.ChromaFormat = "4:4:4"; return r },
			want: []string{"UNSUPPORTED_CHROMA"}, limit: "4:2:0", actual: "4:4:4"},
		{name: "10-bit", category: "amplify_video", r: func() inspect.Report { r := video(); r.Video.BitDepth = 10; return r },
			want: []string{"UNSUPPORTED_BIT_DEPTH"}, limit: "8", actual: "10"},
		{name: "hevc", category: "tweet_video", r: func() inspect.Report { r := video(); r.Video.Codec = "hevc"; return r },
			want: []string{"UNSUPPORTED_VIDEO_CODEC"}, limit: "h264", actual: "hevc"},
		{name: "mp3", category: "tweet_video", r: func() inspect.Report { r := video(); r.Audio = inspect.Audio{Codec: "mp3"}; return r },
			want: []string{"UNSUPPORTED_AUDIO_CODEC"}, limit: "aac-lc", actual: "mp3"},
		{name: "HE-AAC", category: "tweet_video", r: func() inspect.Report {
			r := video()
			r.Audio.ObjectType, r.Audio.Profile = 5, "HE-AAC"
			return r
		}, want: []string{"UNSUPPORTED_AUDIO_CODEC"}, actual: "aac-he"},
		{name: "no audio track is fine", category: "tweet_video", r: func() inspect.Report {
			r := video()
			r.AudioTracks, r.Audio = 0, inspect.Audio{}
			return r
		}},
		{name: "5.1", category: "tweet_video", r: func() inspect.Report { r := video(); r.Audio.Channels = 6; return r },
			want: []string{"TOO_MANY_AUDIO_CHANNELS"}, limit: "2", actual: "6"},
		{name: "too large", category: "tweet_video", r: func() inspect.Report { r := video(); r.Video.Width, r.Video.Height = 2560, 1440; return r },
			want: []string{"DIMENSIONS_TOO_LARGE"}, limit: "1920x1200", actual: "2560x1440"},
		{name: "portrait 1080x1920 passes", category: "tweet_video", r: func() inspect.Report {
			r := video()
			r.Video.Width, r.Video.Height = 1080, 1920
			return r
		}},
		{name: "too small", category: "tweet_video", r: func() inspect.Report { r := video(); r.Video.Width, r.Video.Height = 16, 16; return r },
			want: []string{"DIMENSIONS_TOO_SMALL"}, limit: "32x32", actual: "16x16"},
		{name: "aspect 4:1", category: "tweet_video", r: func() inspect.Report { r := video(); r.Video.Width, r.Video.Height = 1280, 320; return r },
			want: []string{"ASPECT_RATIO"}, actual: "4:1"},
		{name: "aspect exactly 3:1 passes", category: "tweet_video", r: func() inspect.Report { r := video(); r.Video.Width, r.Video.Height = 960, 320; return r }},
		{name: "non-square pixels", category: "tweet_video", r: func() inspect.Report {
			r := video()
			r.Video.SARNum, r.Video.SARDen = 4, 3
			return r
		}, want: []string{"NON_SQUARE_PIXELS"}, limit: "1:1", actual: "4:3"},
		{name: "no video track", category: "tweet_video", r: func() inspect.Report {
			r := video()
			r.VideoTracks, r.Known = 0, r.Known&^(inspect.KnownVideoCodec|inspect.KnownDimensions|inspect.KnownPixelAspect|inspect.KnownFrameRate)
			return r
		}, want: []string{"MALFORMED_MEDIA"}},
		{name: "dm video over 512 MiB declared", category: "dm_video", r: func() inspect.Report { r := video(); r.TotalBytes = 600 << 20; return r },
			want: []string{"MEDIA_TOO_LARGE"}, limit: "536870912", actual: "629145600"},
		{name: "mp4 bytes declared as png", category: "tweet_image", r: func() inspect.Report { r := video(); r.MediaType = "image/png"; return r },
			want: []string{"FORMAT_MISMATCH", "IMAGE_TOO_LARGE"}, limit: "image/png", actual: "mp4"},
		{name: "video sent as tweet_image", category: "tweet_image", r: func() inspect.Report { r := video(); r.MediaType = "video/mp4"; return r },
			want: []string{"FORMAT_MISMATCH", "IMAGE_TOO_LARGE"}},
		{name: "unknown bytes", category: "tweet_video", r: func() inspect.Report {
			return inspect.Report{MediaType: "video/mp4", TotalBytes: 100, BytesSeen: 16, Format: inspect.FormatUnknown, Known: inspect.KnownFormat, Problem: "the first bytes match no known media format"}
		}, want: []string{"MALFORMED_MEDIA"}},
		{name: "empty upload at the end", category: "tweet_video", final: true, r: func() inspect.Report {
			return inspect.Report{MediaType: "video/mp4", Ended: true}
		}, want: []string{"MALFORMED_MEDIA"}},
		{name: "nothing seen yet decides nothing", category: "tweet_video", r: func() inspect.Report {
			return inspect.Report{MediaType: "video/mp4", TotalBytes: 100}
		}},
		{name: "truncated movie", category: "tweet_video", final: true, r: func() inspect.Report {
			r := video()
			r.Problem = "truncated: box \"mdat\" at offset 40 declares 100 bytes, the stream ends after 20"
			return r
		}, want: []string{"MALFORMED_MEDIA"}},
		{name: "internal problem is not the media's fault", category: "tweet_video", r: func() inspect.Report {
			r := video()
			r.Problem = "internal: inspector stopped: boom"
			return r
		}},
		{name: "webm refused by default", category: "tweet_video", r: func() inspect.Report {
			return inspect.Report{MediaType: "video/webm", TotalBytes: 100, BytesSeen: 16, Format: inspect.FormatWebM, Known: inspect.KnownFormat}
		}, want: []string{"FORMAT_MISMATCH"}, limit: "mp4|mov", actual: "webm"},

		{name: "gif 351 frames while streaming", category: "tweet_gif", r: func() inspect.Report {
			r := gif()
			r.Frames, r.Ended, r.Known = 351, false, r.Known&^inspect.KnownFrames
			return r
		}, want: []string{"GIF_TOO_MANY_FRAMES"}, limit: "350", actual: "351"},
		{name: "gif too wide", category: "dm_gif", r: func() inspect.Report { r := gif(); r.Width = 1300; return r },
			want: []string{"DIMENSIONS_TOO_LARGE"}, limit: "1280x1080", actual: "1300x270"},
		{name: "gif pixel-frames", category: "tweet_gif", r: func() inspect.Report {
			r := gif()
			r.Width, r.Height, r.Frames = 1280, 1080, 300
			return r
		}, want: []string{"GIF_TOO_LARGE"}, limit: "300000000", actual: "414720000"},
		{name: "gif over 15 MiB", category: "tweet_gif", r: func() inspect.Report { r := gif(); r.TotalBytes = 16 << 20; return r },
			want: []string{"MEDIA_TOO_LARGE"}},
		{name: "animated gif as image", category: "dm_image", r: func() inspect.Report { r := gif(); r.Frames = 2; return r },
			want: []string{"GIF_TOO_MANY_FRAMES"}, limit: "1", actual: "2"},
		{name: "single-frame gif as image", category: "tweet_image", r: func() inspect.Report { r := gif(); r.Frames = 1; return r }},
		{name: "gif as tweet_video", category: "tweet_video", r: gif, want: []string{"FORMAT_MISMATCH"}},

		{name: "image over 5 MiB", category: "tweet_image", r: func() inspect.Report { r := image(); r.TotalBytes = 5<<20 + 1; return r },
			want: []string{"IMAGE_TOO_LARGE"}, limit: "5242880", actual: "5242881"},
		{name: "image exactly 5 MiB passes", category: "dm_image", r: func() inspect.Report { r := image(); r.TotalBytes = 5 << 20; return r }},
		{name: "unknown size, bytes seen over the limit", category: "tweet_image", r: func() inspect.Report {
			r := image()
			r.TotalBytes, r.BytesSeen = -1, 6<<20
			return r
		}, want: []string{"IMAGE_TOO_LARGE"}},
		{name: "truncated image header", category: "tweet_image", final: true, r: func() inspect.Report {
			r := image()
			r.Known, r.Problem, r.Ended = inspect.KnownFormat, "truncated: the png header is cut short", true
			return r
		}, want: []string{"MALFORMED_MEDIA"}},

		{name: "subtitles latin-1", category: "subtitles", final: true, r: func() inspect.Report { r := subs(); r.Subtitles.BadUTF8Line = 3; return r },
			want: []string{"SUBTITLES_NOT_UTF8"}, actual: "line 3"},
		{name: "subtitles bad timing", category: "subtitles", r: func() inspect.Report {
			r := subs()
			r.Subtitles.MalformedLine, r.Subtitles.MalformedReason = 2, "a timestamp is not hh:mm:ss,mmm"
			return r
		}, want: []string{"SUBTITLES_MALFORMED"}, actual: "line 2"},
		{name: "vtt declared as srt", category: "subtitles", r: func() inspect.Report { r := subs(); r.Format = inspect.FormatVTT; return r },
			want: []string{"FORMAT_MISMATCH"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			vs := Check(c.category, c.r(), c.final)
			var got []string
			for _, v := range vs {
				got = append(got, v.Reason)
				if v.Field == "" || v.Actual == "" || !strings.HasSuffix(v.Description, ".") {
					t.Errorf("%s: field %q, actual %q, description %q: want all set, one sentence", v.Reason, v.Field, v.Actual, v.Description)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("Check = %v, want %v (%+v)", got, c.want, vs)
			}
			if c.limit != "" && vs[0].Limit != c.limit {
				t.Errorf("limit = %q, want %q", vs[0].Limit, c.limit)
			}
			if c.actual != "" && vs[0].Actual != c.actual {
				t.Errorf("actual = %q, want %q", vs[0].Actual, c.actual)
			}
		})
	}
}

func TestOverridesFromYAML(t *testing.T) {
	t.Parallel()
	const doc = `
tweet_video: {max_duration: 125m, max_bytes: 16GiB, video_codecs: [h264, hevc]}
dm_video:
  max_duration: 10m
  max_bytes: 1073741824
  square_pixels: false
tweet_gif: {max_frames: 0, min_aspect_ratio: "1:4"}
`
	var o Overrides
	if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
		t.Fatal(err)
	}
	p, err := Default().With(o)
	if err != nil {
		t.Fatal(err)
	}
	tv, dm, g := p["tweet_video"], p["dm_video"], p["tweet_gif"]
	if time.Duration(tv.MaxDuration) != 125*time.Minute || tv.MaxBytes != 16*GiB || !slices.Equal(tv.VideoCodecs, []string{"h264", "hevc"}) {
		t.Errorf("tweet_video = %+v", tv)
	}
	if tv.MaxFrameRate != 60 || tv.MinDuration != Duration(500*time.Millisecond) {
		t.Errorf("tweet_video lost limits it did not override: %+v", tv)
	}
	if time.Duration(dm.MaxDuration) != 10*time.Minute || dm.MaxBytes != GiB || dm.SquarePixels {
		t.Errorf("dm_video = %+v", dm)
	}
	if g.MaxFrames != 0 || g.MinAspectRatio != 0.25 || g.MaxPixelFrames != 300_000_000 {
		t.Errorf("tweet_gif = %+v", g)
	}
	if Default()["tweet_video"].MaxBytes != 8*GiB {
		t.Errorf("With changed the default profile")
	}
	r := video()
	r.Duration, r.Video.Codec = 30*time.Minute, "hevc"
	if vs := p.Check("tweet_video", r, false); len(vs) != 0 {
		t.Errorf("a 30 min HEVC video under the override: %+v", vs)
	}
	r.Duration = 130 * time.Minute
	if vs := p.Check("tweet_video", r, false); len(vs) != 1 || vs[0].Limit != "7500s" {
		t.Errorf("a 130 min video under the override: %+v", vs)
	}

	for _, bad := range []string{"nope: {max_bytes: 1}", "tweet_video: {max_duration: forever}", "tweet_video: {max_bytes: lots}", "tweet_gif: {min_aspect_ratio: a:b}"} {
		var o Overrides
		err := yaml.Unmarshal([]byte(bad), &o)
		if err == nil {
			_, err = Default().With(o)
		}
		if err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestDefaultProfileCoversEveryCategory(t *testing.T) {
	t.Parallel()
	want := []string{"amplify_video", "dm_gif", "dm_image", "dm_video", "subtitles", "tweet_gif", "tweet_image", "tweet_video"}
	if got := Default().Categories(); !slices.Equal(got, want) {
		t.Errorf("categories = %v, want %v", got, want)
	}
}
