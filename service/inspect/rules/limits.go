package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits are the rules of one media category. A zero number or an empty
// list means "no rule". The yaml names are the names used in the accounts
// file and in the docs.
type Limits struct {
	// Formats lists the formats found in the bytes that the category takes
	// (inspect.Format names: mp4, mov, gif, png, jpeg, webp, bmp, tiff, srt, vtt, webm, mp2t).
	Formats []string `yaml:"formats"`
	// MaxBytes is the largest upload (declared total_bytes, else bytes seen).
	MaxBytes ByteSize `yaml:"max_bytes"`
	// MinDuration and MaxDuration bound a video's duration.
	MinDuration Duration `yaml:"min_duration"`
	MaxDuration Duration `yaml:"max_duration"`
	// MinWidth … MaxHeight bound the picture. They apply to the long and the
	// short side: with max 1920×1200 a portrait 1080×1920 video passes.
	MinWidth  int `yaml:"min_width"`
	MinHeight int `yaml:"min_height"`
	MaxWidth  int `yaml:"max_width"`
	MaxHeight int `yaml:"max_height"`
	// MinAspectRatio and MaxAspectRatio bound width:height of the displayed
	// picture (pixel aspect applied), e.g. "1:3" and "3:1".
	MinAspectRatio Ratio `yaml:"min_aspect_ratio"`
	MaxAspectRatio Ratio `yaml:"max_aspect_ratio"`
	// MaxFrameRate bounds the average frame rate (frames per second).
	MaxFrameRate float64 `yaml:"max_frame_rate"`
	// VideoCodecs lists accepted video codecs by ffprobe name (h264, hevc).
	VideoCodecs []string `yaml:"video_codecs"`
	// ChromaFormats lists accepted chroma subsamplings ("4:2:0").
	ChromaFormats []string `yaml:"chroma_formats"`
	// MaxBitDepth bounds the luma bit depth (8 for yuv420p).
	MaxBitDepth int `yaml:"max_bit_depth"`
	// AudioCodecs lists accepted audio codecs: "aac-lc", "aac-he",
	// "aac-hev2", or an ffprobe codec name (mp3, opus, ac3, ...).
	AudioCodecs []string `yaml:"audio_codecs"`
	// MaxAudioChannels bounds the audio channels (2: mono or stereo).
	MaxAudioChannels int `yaml:"max_audio_channels"`
	// SquarePixels requires a 1:1 sample aspect ratio.
	SquarePixels bool `yaml:"square_pixels"`
	// MaxFrames bounds a GIF's frames (1 for the image categories: an
	// animated GIF must go as tweet_gif/dm_gif).
	MaxFrames int `yaml:"max_frames"`
	// MaxPixelFrames bounds width × height × frames of a GIF.
	MaxPixelFrames int64 `yaml:"max_pixel_frames"`
}

// Override changes some limits of a category; a field left out (nil) keeps
// the profile's value, a zero value removes the rule. It is what an
// account's media_rules entry decodes into.
type Override struct {
	Formats          *[]string `yaml:"formats"`
	MaxBytes         *ByteSize `yaml:"max_bytes"`
	MinDuration      *Duration `yaml:"min_duration"`
	MaxDuration      *Duration `yaml:"max_duration"`
	MinWidth         *int      `yaml:"min_width"`
	MinHeight        *int      `yaml:"min_height"`
	MaxWidth         *int      `yaml:"max_width"`
	MaxHeight        *int      `yaml:"max_height"`
	MinAspectRatio   *Ratio    `yaml:"min_aspect_ratio"`
	MaxAspectRatio   *Ratio    `yaml:"max_aspect_ratio"`
	MaxFrameRate     *float64  `yaml:"max_frame_rate"`
	VideoCodecs      *[]string `yaml:"video_codecs"`
	ChromaFormats    *[]string `yaml:"chroma_formats"`
	MaxBitDepth      *int      `yaml:"max_bit_depth"`
	AudioCodecs      *[]string `yaml:"audio_codecs"`
	MaxAudioChannels *int      `yaml:"max_audio_channels"`
	SquarePixels     *bool     `yaml:"square_pixels"`
	MaxFrames        *int      `yaml:"max_frames"`
	MaxPixelFrames   *int64    `yaml:"max_pixel_frames"`
}

// Apply returns l with the fields set in o replaced.
func (o Override) Apply(l Limits) Limits {
	set(&l.Formats, o.Formats)
	set(&l.MaxBytes, o.MaxBytes)
	set(&l.MinDuration, o.MinDuration)
	set(&l.MaxDuration, o.MaxDuration)
	set(&l.MinWidth, o.MinWidth)
	set(&l.MinHeight, o.MinHeight)
	set(&l.MaxWidth, o.MaxWidth)
	set(&l.MaxHeight, o.MaxHeight)
	set(&l.MinAspectRatio, o.MinAspectRatio)
	set(&l.MaxAspectRatio, o.MaxAspectRatio)
	set(&l.MaxFrameRate, o.MaxFrameRate)
	set(&l.VideoCodecs, o.VideoCodecs)
	set(&l.ChromaFormats, o.ChromaFormats)
	set(&l.MaxBitDepth, o.MaxBitDepth)
	set(&l.AudioCodecs, o.AudioCodecs)
	set(&l.MaxAudioChannels, o.MaxAudioChannels)
	set(&l.SquarePixels, o.SquarePixels)
	set(&l.MaxFrames, o.MaxFrames)
	set(&l.MaxPixelFrames, o.MaxPixelFrames)
	return l
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// Duration is a time.Duration written as Go writes it ("140s", "20m",
// "2h5m") in YAML.
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil || v < 0 {
		return fmt.Errorf("duration %q is not a non-negative Go duration such as 140s or 20m", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// ByteSize is a byte count written as a plain number or with a unit: KB,
// MB, GB are powers of 1000, KiB, MiB, GiB powers of 1024 (X's "5 MB"
// image limit is 5 MiB: it says "File size exceeds 5242880 bytes").
type ByteSize int64

var units = []struct {
	s string
	n int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}

// UnmarshalText parses "5242880", "5MiB" or "8 GiB".
func (s *ByteSize) UnmarshalText(b []byte) error {
	t := strings.TrimSpace(string(b))
	mul := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.s) {
			t, mul = strings.TrimSpace(strings.TrimSuffix(t, u.s)), u.n
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*float64(mul) > 1<<62 {
		return fmt.Errorf("byte size %q is not a number of bytes such as 5242880, 512MiB or 8GiB", b)
	}
	*s = ByteSize(v * float64(mul))
	return nil
}

// Ratio is a width:height ratio written "1:3" (or a decimal "0.333").
type Ratio float64

// UnmarshalText parses "w:h" or a decimal.
func (r *Ratio) UnmarshalText(b []byte) error {
	t := strings.TrimSpace(string(b))
	bad := fmt.Errorf("aspect ratio %q is not width:height such as 1:3", b)
	if w, h, ok := strings.Cut(t, ":"); ok {
		a, e1 := strconv.ParseFloat(w, 64)
		c, e2 := strconv.ParseFloat(h, 64)
		if e1 != nil || e2 != nil || a <= 0 || c <= 0 {
			return bad
		}
		*r = Ratio(a / c)
		return nil
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 {
		return bad
	}
	*r = Ratio(v)
	return nil
}
