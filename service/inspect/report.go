package inspect

import (
	"fmt"
	"strings"
	"time"
)

// Format names the container or file format found in the bytes (not the
// declared media type).
type Format string

// The formats the inspector recognises.
const (
	FormatUnknown Format = "unknown" // enough bytes seen and none matched
	FormatMP4     Format = "mp4"     // ISO BMFF with a non-QuickTime brand
	FormatMOV     Format = "mov"     // ISO BMFF with the "qt  " brand (or no ftyp)
	FormatWebM    Format = "webm"    // recognised, not inspected
	FormatMP2T    Format = "mp2t"    // recognised, not inspected
	FormatGIF     Format = "gif"
	FormatPNG     Format = "png"
	FormatJPEG    Format = "jpeg"
	FormatWebP    Format = "webp"
	FormatBMP     Format = "bmp"
	FormatTIFF    Format = "tiff"
	FormatSRT     Format = "srt"
	FormatVTT     Format = "vtt"
)

// Fields is a set of the values a [Report] holds; a value outside
// [Report.Known] is not decided yet (or never will be).
type Fields uint32

// The values a report can know.
const (
	// KnownFormat: Format is decided.
	KnownFormat Fields = 1 << iota
	// KnownTracks: the moov was parsed, so the set of tracks is final
	// (a missing audio track is really missing).
	KnownTracks
	// KnownLayout: Faststart and Fragmented are decided.
	KnownLayout
	// KnownDuration: Duration is final.
	KnownDuration
	// KnownDimensions: Width and Height are decided.
	KnownDimensions
	// KnownPixelAspect: the video's sample aspect ratio is decided.
	KnownPixelAspect
	// KnownVideoCodec: the video codec, profile, level, chroma format and
	// bit depth are decided.
	KnownVideoCodec
	// KnownFrameRate: the video frame rate is final.
	KnownFrameRate
	// KnownAudio: the audio codec, object type, channels and sample rate
	// are decided.
	KnownAudio
	// KnownFrames: the GIF frame count is final (the trailer was seen).
	KnownFrames
	// KnownCues: the subtitle cue count and checks are final.
	KnownCues
)

var fieldNames = []string{"format", "tracks", "layout", "duration", "dimensions",
	"pixel_aspect", "video_codec", "frame_rate", "audio", "frames", "cues"}

// Has reports whether every value in f is in the set.
func (s Fields) Has(f Fields) bool { return s&f == f }

// String lists the names of the values in the set ("format|duration").
func (s Fields) String() string {
	var out []string
	for i, n := range fieldNames {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, "|")
}

// Report is what the inspector knows so far. Values are meaningful only
// when their bit is in Known; zero values are "not seen".
type Report struct {
	MediaType  string // as declared to [New]
	TotalBytes int64  // as declared to [New]; -1 when unknown
	BytesSeen  int64  // bytes written so far
	Ended      bool   // the stream ended (TotalBytes reached or [Inspector.Finish])

	Format Format
	Known  Fields
	// Complete is true once every decisive box, frame or line was seen:
	// no later byte can change a known value.
	Complete bool
	// Problem is the first thing found wrong with the bytes ("" if none),
	// subtitle findings (bad UTF-8, a malformed cue) included. It is set
	// only when the bytes seen so far are certainly invalid (truncation
	// only once the stream has ended).
	Problem string

	// ISO BMFF (MP4/MOV).
	Brand       string        // ftyp major brand
	Faststart   bool          // moov came before the first mdat
	Fragmented  bool          // moov has mvex (movie fragments follow)
	MoovOffset  int64         // byte offset of the moov box; -1 before it is seen
	Oversized   bool          // a box read whole (stts, trun, stsd, ...) was over its cap and skipped: its values stay unknown
	Duration    time.Duration // movie duration (mvhd, else the longest track, else the fragments)
	VideoTracks int
	AudioTracks int
	Video       Video // the first video track
	Audio       Audio // the first audio track

	// Images and GIF: dimensions (for GIF the logical screen) and frames.
	Width, Height int
	Frames        int // GIF image descriptors seen so far

	Subtitles Subtitles
}

// Video describes the first video track of a movie.
type Video struct {
	Codec        string // ffprobe's codec_name: "h264", "hevc", or the sample entry type
	CodecTag     string // sample entry type: "avc1", "avc3", "hvc1", "hev1", ...
	Profile      string // ffprobe's profile name: "High", "Main 10", ...
	Level        int    // level_idc (H.264) or general_level_idc (HEVC)
	ChromaFormat string // "4:0:0", "4:2:0", "4:2:2", "4:4:4"
	BitDepth     int    // luma bit depth
	PixFmt       string // ffprobe's pix_fmt equivalent: "yuv420p", "yuv444p", "yuv420p10le"
	Width        int    // sample entry width (coded picture)
	Height       int
	SARNum       int // pixel (sample) aspect ratio from pasp; 1:1 when absent
	SARDen       int
	FrameRateNum int64 // average frame rate = FrameRateNum / FrameRateDen
	FrameRateDen int64
	Frames       int64         // samples counted (stts or fragments)
	Duration     time.Duration // track duration
}

// FrameRate is the average frame rate in frames per second (0 if unknown).
func (v Video) FrameRate() float64 {
	if v.FrameRateDen == 0 {
		return 0
	}
	return float64(v.FrameRateNum) / float64(v.FrameRateDen)
}

// Audio describes the first audio track of a movie.
type Audio struct {
	Codec      string // ffprobe's codec_name: "aac", "mp3", or the sample entry type
	CodecTag   string // sample entry type: "mp4a", ".mp3", ...
	ObjectType int    // MPEG-4 audio object type (2 = AAC-LC); 0 if not AAC
	Profile    string // ffprobe's profile name for AAC: "LC", "HE-AAC", "HE-AACv2", "Main", ...
	Channels   int    // 0 when unknown (MP3 in MP4 keeps it in mdat)
	SampleRate int
}

// Subtitles describes an SRT or WebVTT file.
type Subtitles struct {
	Cues int // well-formed cues seen so far
	// BadUTF8Line is the first line (1-based) that is not UTF-8; 0 if none.
	BadUTF8Line int
	// MalformedLine is the first line (1-based) that breaks the cue
	// syntax; 0 if none. MalformedReason says how.
	MalformedLine   int
	MalformedReason string
}

// SAR returns the sample aspect ratio as "num:den".
func (v Video) SAR() string { return fmt.Sprintf("%d:%d", v.SARNum, v.SARDen) }
