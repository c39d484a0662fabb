package inspect_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mediagw/mediagw/service/inspect"
	"github.com/mediagw/mediagw/service/inspect/rules"
)

// An upload streams through the inspector; the rules decide what X would
// reject. The movie is a committed ffmpeg file: 0.2 s of QuickTime, H.264
// 4:4:4 and AAC.
func Example() {
	raw, _ := os.ReadFile("testdata/fuzz/FuzzMP4/q-mov")
	lit := strings.TrimSuffix(strings.TrimSpace(strings.SplitN(string(raw), "[]byte(", 2)[1]), ")")
	movie, _ := strconv.Unquote(lit)

	in := inspect.New("video/quicktime", int64(len(movie)))
	for off := 0; off < len(movie); off += 100 { // any cut works
		in.Write([]byte(movie[off:min(off+100, len(movie))]))
	}
	r := in.Report()
	fmt.Println(r.Format, r.Video.Codec, r.Video.Profile, r.Video.PixFmt, r.Video.Width, "x", r.Video.Height, r.Audio.Codec, r.Audio.Profile)
	for _, v := range rules.Check("tweet_video", r, true) {
		fmt.Println(v.Reason, v.Limit, v.Actual)
	}
	// Output:
	// mov h264 High 4:4:4 Predictive yuv444p 32 x 32 aac LC
	// VIDEO_TOO_SHORT 0.5s 0.2s
	// UNSUPPORTED_CHROMA 4:2:0 4:4:4
}
