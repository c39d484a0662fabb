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

// TestMdatIsNeverBuffered streams a 64 MiB mdat and a moov over the cap
// and checks the heap did not grow with them.
func TestMdatIsNeverBuffered(t *testing.T) {
	head, moov := syntheticMovie(t, 64<<20)
	buf := make([]byte, 1<<20)
	bigMoov := make([]byte, 8)
	binary.BigEndian.PutUint32(bigMoov, inspect.MaxMoovBytes+9)
	copy(bigMoov[4:], "moov")
	total := int64(len(head)) + 64<<20 + int64(len(moov)) + inspect.MaxMoovBytes + 9

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	in := inspect.New("video/mp4", total)
	in.Write(head)
	for range 64 {
		in.Write(buf)
	}
	in.Write(moov)
	in.Write(bigMoov)
	for left := int64(inspect.MaxMoovBytes + 1); left > 0; left -= int64(len(buf)) {
		in.Write(buf[:min(int64(len(buf)), left)])
	}
	r := in.Report()
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
		t.Errorf("inspecting 96 MiB allocated %d bytes, want < 1 MiB", grown)
	}
	if !r.Ended || !r.Complete || r.Problem != "" || r.Video.Codec != "h264" || r.Faststart {
		t.Errorf("report %+v", r)
	}
}

// TestOversizedMoovStaysUnknown: a first moov over MaxMoovBytes is
// skipped, its values unknown, and no problem is reported.
func TestOversizedMoovStaysUnknown(t *testing.T) {
	head, _ := syntheticMovie(t, 1024)
	hdr := make([]byte, 8)
	binary.BigEndian.PutUint32(hdr, inspect.MaxMoovBytes+9)
	copy(hdr[4:], "moov")
	in := inspect.New("video/mp4", int64(len(head))+1024+inspect.MaxMoovBytes+9)
	in.Write(head)
	in.Write(make([]byte, 1024))
	in.Write(hdr)
	in.Write(make([]byte, inspect.MaxMoovBytes+1))
	r := in.Report()
	if !r.Ended || !r.MoovSkipped || r.Known.Has(inspect.KnownTracks) || r.Problem != "" {
		t.Errorf("report %+v", r)
	}
}
