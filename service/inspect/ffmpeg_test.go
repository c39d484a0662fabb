package inspect_test

import (
	"bytes"
	"encoding/json"
	"hash/fnv"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mediagw/mediagw/service/inspect"
)

// needFFmpeg skips the test when ffmpeg or ffprobe is missing, except in
// CI (CI=true), where the fixtures are required.
func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI (apt-get install -y ffmpeg): %v", tool, err)
			}
			t.Skipf("%s not found (apt-get install -y ffmpeg): the real-media tests are skipped", tool)
		}
	}
}

// ffmpeg runs ffmpeg with args in dir and fails the test on error.
func ffmpeg(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-nostdin", "-v", "error", "-y"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}

// probe is the part of ffprobe's JSON the tests compare.
type probe struct {
	Streams []struct {
		CodecType        string `json:"codec_type"`
		CodecName        string `json:"codec_name"`
		CodecTag         string `json:"codec_tag_string"`
		Profile          string `json:"profile"`
		Level            int    `json:"level"`
		Width            int    `json:"width"`
		Height           int    `json:"height"`
		PixFmt           string `json:"pix_fmt"`
		SAR              string `json:"sample_aspect_ratio"`
		AvgFrameRate     string `json:"avg_frame_rate"`
		Channels         int    `json:"channels"`
		SampleRate       string `json:"sample_rate"`
		NbReadFrames     string `json:"nb_read_frames"`
		NbReadPackets    string `json:"nb_read_packets"`
		Duration         string `json:"duration"`
		BitsPerRawSample string `json:"bits_per_raw_sample"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

// ffprobe runs the oracle on path (extra flags such as -count_frames).
func ffprobe(t testing.TB, path string, extra ...string) probe {
	t.Helper()
	args := append([]string{"-v", "error"}, extra...)
	args = append(args, "-show_streams", "-show_format", "-of", "json", path)
	out, err := exec.Command("ffprobe", args...).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return p
}

// inspectChunks feeds b to a new inspector of an upload declared as total
// bytes, in random writes of 1 B to 1 MiB (seeded by name, so a failure
// repeats), and returns its report.
func inspectChunks(t testing.TB, name, mediaType string, b []byte, total int64) inspect.Report {
	t.Helper()
	h := fnv.New64a()
	h.Write([]byte(name))
	rng := rand.New(rand.NewSource(int64(h.Sum64())))
	in := inspect.New(mediaType, total)
	for len(b) > 0 {
		n := 1 << rng.Intn(21) // 1 B .. 1 MiB
		n = min(n+rng.Intn(n), 1<<20, len(b))
		if k, err := in.Write(b[:n]); k != n || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v; want %d, nil", n, k, err, n)
		}
		b = b[n:]
	}
	return in.Report()
}

// inspectWhole feeds b in one write.
func inspectWhole(mediaType string, b []byte) inspect.Report {
	in := inspect.New(mediaType, int64(len(b)))
	in.Write(b)
	return in.Report()
}

func TestChunkingDoesNotChangeTheReport(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	ffmpeg(t, dir, "-f", "lavfi", "-i", "testsrc=duration=1:size=96x64:rate=25", "-f", "lavfi", "-i", "sine=duration=1",
		"-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", "-movflags", "+faststart", "a.mp4")
	ffmpeg(t, dir, "-f", "lavfi", "-i", "testsrc=duration=0.4:size=32x24:rate=10", "a.gif")
	for _, f := range []struct{ name, mt string }{{"a.mp4", "video/mp4"}, {"a.gif", "image/gif"}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		whole := inspectWhole(f.mt, b)
		// Every byte in its own write is the hardest case for the state machines.
		in := inspect.New(f.mt, int64(len(b)))
		for i := range b {
			in.Write(b[i : i+1])
		}
		if got := in.Report(); !reflect.DeepEqual(got, whole) {
			t.Errorf("%s: byte-by-byte report differs from one write:\n%+v\n%+v", f.name, got, whole)
		}
		for seed := range 5 {
			if got := inspectChunks(t, f.name+string(rune('a'+seed)), f.mt, b, int64(len(b))); !reflect.DeepEqual(got, whole) {
				t.Errorf("%s seed %d: chunked report differs from one write:\n%+v\n%+v", f.name, seed, got, whole)
			}
		}
		if !whole.Complete || whole.Problem != "" {
			t.Errorf("%s: Complete=%v Problem=%q; want a complete report without problem", f.name, whole.Complete, whole.Problem)
		}
	}
}

// TestWriteNeverKeepsTheBuffer checks that the caller's buffer is not
// retained: changing it after Write changes nothing.
func TestWriteNeverKeepsTheBuffer(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	ffmpeg(t, dir, "-f", "lavfi", "-i", "testsrc=duration=0.5:size=64x48:rate=10", "-c:v", "libx264", "-preset", "veryfast", "-movflags", "+faststart", "a.mp4")
	b, err := os.ReadFile(filepath.Join(dir, "a.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	want := inspectWhole("video/mp4", b)
	in := inspect.New("video/mp4", int64(len(b)))
	buf := make([]byte, 7)
	for off := 0; off < len(b); off += len(buf) {
		n := copy(buf, b[off:])
		in.Write(buf[:n])
		copy(buf, bytes.Repeat([]byte{0xff}, len(buf)))
	}
	if got := in.Report(); !reflect.DeepEqual(got, want) {
		t.Errorf("report depends on the reused buffer:\n%+v\n%+v", got, want)
	}
}
