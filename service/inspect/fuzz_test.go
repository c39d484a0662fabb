package inspect_test

import (
	"hash/fnv"
	"reflect"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/service/inspect"
	"github.com/mediagw/mediagw/service/inspect/rules"
)

// The seed corpora under testdata/fuzz are small real files made by
// ffmpeg (see testdata/fuzz/README.md). Each fuzzer checks that no input
// panics or reads past a box (a parser panic would surface as an
// "internal:" problem), that split writes give the same report as one
// write, and that the rules accept every report.

func FuzzMP4(f *testing.F) { fuzzInspect(f, "video/mp4", "video/quicktime") }

func FuzzGIF(f *testing.F) { fuzzInspect(f, "image/gif") }

func FuzzImage(f *testing.F) { fuzzInspect(f, "image/png", "image/jpeg") }

func FuzzSubtitles(f *testing.F) { fuzzInspect(f, "text/srt", "text/vtt") }

var categories = rules.Default().Categories()

func fuzzInspect(f *testing.F, mediaTypes ...string) {
	f.Fuzz(func(t *testing.T, data []byte) {
		h := fnv.New32a()
		h.Write(data)
		step := 1 + int(h.Sum32()%61)
		for _, mt := range mediaTypes {
			one := inspect.New(mt, int64(len(data)))
			one.Write(data)
			want := one.Report()
			sane(t, want, len(data))

			split := inspect.New(mt, int64(len(data)))
			for off := 0; off < len(data); off += step {
				split.Write(data[off:min(off+step, len(data))])
			}
			if got := split.Report(); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: writes of %d bytes give\n%+v\none write gives\n%+v", mt, step, got, want)
			}

			open := inspect.New(mt, -1)
			open.Write(data)
			sane(t, open.Finish(), len(data))

			for _, c := range categories {
				for _, final := range []bool{false, true} {
					for _, v := range rules.Check(c, want, final) {
						if v.Reason == "" || v.Description == "" {
							t.Fatalf("empty violation %+v", v)
						}
					}
				}
			}
		}
	})
}

func sane(t *testing.T, r inspect.Report, n int) {
	t.Helper()
	if strings.HasPrefix(r.Problem, "internal:") {
		t.Fatalf("parser failed: %s", r.Problem)
	}
	if !r.Ended || r.BytesSeen != int64(n) {
		t.Fatalf("Ended=%v BytesSeen=%d, want true, %d", r.Ended, r.BytesSeen, n)
	}
	if r.Width < 0 || r.Height < 0 || r.Frames < 0 || r.Duration < 0 || r.Subtitles.Cues < 0 {
		t.Fatalf("negative values: %+v", r)
	}
}

// TestBytesPastTheDeclaredTotal: extra bytes are counted and reported as a
// problem; Write still takes them all without error.
func TestBytesPastTheDeclaredTotal(t *testing.T) {
	t.Parallel()
	srt := []byte("1\n00:00:01,000 --> 00:00:02,000\nHi\n\n")
	in := inspect.New("text/srt", int64(len(srt)))
	for _, p := range [][]byte{srt[:10], append(srt[10:], "junk"...), []byte("more")} {
		if n, err := in.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(p))
		}
	}
	r := in.Report()
	if r.BytesSeen != int64(len(srt)+8) || !r.Ended || r.Subtitles.Cues != 1 || !strings.Contains(r.Problem, "more bytes than the declared") {
		t.Errorf("report %+v", r)
	}
}

// TestEmptyAndTinyUploads: nothing or a few bytes end as findings, never
// a panic.
func TestEmptyAndTinyUploads(t *testing.T) {
	t.Parallel()
	if r := inspect.New("video/mp4", 0).Report(); !r.Ended || !r.Known.Has(inspect.KnownFormat) || r.Problem == "" {
		t.Errorf("empty upload: %+v", r)
	}
	for _, b := range []string{"\x00\x00\x00", "GIF89a", "\x89PNG", "WEBVTT"} {
		in := inspect.New("video/mp4", -1)
		in.Write([]byte(b))
		if r := in.Finish(); !r.Ended || r.Problem == "" {
			t.Errorf("%q: want a problem, got %+v", b, r)
		}
	}
}
