package inspect_test

import (
	"encoding/binary"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/service/inspect"
)

// seed reads one committed fuzz seed (a real ffmpeg file).
func seed(tb testing.TB, path string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	_, lit, ok := strings.Cut(string(raw), "[]byte(")
	if !ok {
		tb.Fatalf("%s is not a fuzz seed", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimSpace(lit), ")"))
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// topBoxes returns the top-level boxes of an ISO BMFF file by type.
func topBoxes(tb testing.TB, b []byte) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	for len(b) >= 8 {
		n := int(binary.BigEndian.Uint32(b))
		if n < 8 || n > len(b) {
			tb.Fatalf("bad box size %d", n)
		}
		out[string(b[4:8])] = b[:n]
		b = b[n:]
	}
	return out
}

// syntheticMovie returns the parts of a movie with an mdat of mdatBytes
// (of zeros, written as chunk-sized pieces) before its moov: ftyp, the
// 16-byte mdat header, and the moov of a real ffmpeg file.
func syntheticMovie(tb testing.TB, mdatBytes int64) (head, moov []byte) {
	boxes := topBoxes(tb, seed(tb, "testdata/fuzz/FuzzMP4/moov-at-end-mp4"))
	head = append(head, boxes["ftyp"]...)
	hdr := make([]byte, 16)
	binary.BigEndian.PutUint32(hdr, 1)
	copy(hdr[4:], "mdat")
	binary.BigEndian.PutUint64(hdr[8:], uint64(16+mdatBytes))
	return append(head, hdr...), boxes["moov"]
}

// BenchmarkInspectMP4 streams a 480 MiB movie (moov after mdat, the worst
// case: nothing is decided before the end) through an inspector in the
// chunk sizes an upload sees. MB/s is over the whole movie.
func BenchmarkInspectMP4(b *testing.B) {
	const mdat = 480 << 20
	head, moov := syntheticMovie(b, mdat)
	for _, chunk := range []int{32 << 10, 1 << 20} {
		b.Run("chunk="+strconv.Itoa(chunk>>10)+"KiB", func(b *testing.B) {
			buf := make([]byte, chunk)
			total := int64(len(head)) + mdat + int64(len(moov))
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				in := inspect.New("video/mp4", total)
				in.Write(head)
				for left := int64(mdat); left > 0; left -= int64(chunk) {
					in.Write(buf[:min(int64(chunk), left)])
				}
				in.Write(moov)
				if r := in.Report(); !r.Complete || r.Problem != "" || r.Video.Codec != "h264" {
					b.Fatalf("report %+v", r)
				}
			}
		})
	}
}

// heapGrowth returns the bytes allocated while f runs.
func heapGrowth(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestMdatIsNeverBuffered streams a 64 MiB mdat and checks the heap did
// not grow with it.
func TestMdatIsNeverBuffered(t *testing.T) {
	head, moov := syntheticMovie(t, 64<<20)
	buf := make([]byte, 1<<20)
	in := inspect.New("video/mp4", int64(len(head))+64<<20+int64(len(moov)))
	grown := heapGrowth(func() {
		in.Write(head)
		for range 64 {
			in.Write(buf)
		}
		in.Write(moov)
	})
	if grown > 256<<10 {
		t.Errorf("inspecting a 64 MiB mdat allocated %d bytes, want < 256 KiB", grown)
	}
	if r := in.Report(); !r.Ended || !r.Complete || r.Problem != "" || r.Video.Codec != "h264" || r.Faststart {
		t.Errorf("report %+v", r)
	}
}

// TestLargeMoovIsWalkedNotBuffered: a 40 MiB moov (a real one plus a
// 40 MiB free box inside it, as a large sample table would be) is walked
// as it streams: its values are known and the heap does not grow with it.
func TestLargeMoovIsWalkedNotBuffered(t *testing.T) {
	head, moov := syntheticMovie(t, 1024)
	const pad = 40 << 20
	big := binary.BigEndian.AppendUint32(nil, uint32(len(moov)+8+pad))
	big = append(big, moov[4:]...)
	big = binary.BigEndian.AppendUint32(big, 8+pad)
	big = append(big, "free"...)
	buf := make([]byte, 1<<20)
	in := inspect.New("video/mp4", int64(len(head))+1024+int64(len(big))+pad)
	grown := heapGrowth(func() {
		in.Write(head)
		in.Write(make([]byte, 1024))
		in.Write(big)
		for range pad / len(buf) {
			in.Write(buf)
		}
	})
	if grown > 256<<10 {
		t.Errorf("inspecting a 40 MiB moov allocated %d bytes, want < 256 KiB", grown)
	}
	r := in.Report()
	if !r.Ended || !r.Complete || r.Problem != "" || r.Video.Codec != "h264" || !r.Known.Has(inspect.KnownFrameRate) {
		t.Errorf("report %+v", r)
	}
}

// TestOversizedTableStaysUnknown: an stts over MaxTableBytes is skipped,
// the frame rate is unknown, and no problem is reported.
func TestOversizedTableStaysUnknown(t *testing.T) {
	head, moov := syntheticMovie(t, 1024)
	i := strings.Index(string(moov), "stts")
	if i < 4 {
		t.Fatal("no stts in the seed's moov")
	}
	// Grow the stts past the cap with zero padding after its entries, and
	// every box that contains it by as much.
	size := int(binary.BigEndian.Uint32(moov[i-4:]))
	extra := inspect.MaxTableBytes + 16 - size
	out := append([]byte{}, moov[:i-4]...)
	for _, typ := range []string{"moov", "trak", "mdia", "minf", "stbl"} {
		j := strings.Index(string(out), typ)
		binary.BigEndian.PutUint32(out[j-4:], binary.BigEndian.Uint32(out[j-4:])+uint32(extra))
	}
	out = binary.BigEndian.AppendUint32(out, uint32(size+extra))
	out = append(out, "stts"...)
	out = append(out, moov[i+4:i-4+size]...)
	out = append(out, make([]byte, extra)...)
	out = append(out, moov[i-4+size:]...)
	in := inspect.New("video/mp4", int64(len(head))+1024+int64(len(out)))
	in.Write(head)
	in.Write(make([]byte, 1024))
	in.Write(out)
	r := in.Report()
	if !r.Ended || !r.Oversized || r.Known.Has(inspect.KnownFrameRate) || r.Problem != "" || r.Video.Codec != "h264" {
		t.Errorf("report %+v", r)
	}
	if r.Video.FrameRate() != 0 {
		t.Errorf("frame rate %.2f from a skipped stts", r.Video.FrameRate())
	}
}
