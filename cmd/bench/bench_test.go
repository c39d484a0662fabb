package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mediagw/mediagw/service/inspect"
	"github.com/mediagw/mediagw/service/inspect/rules"
)

func TestSummarize(t *testing.T) {
	cases := []struct {
		in   []float64
		want Summary
	}{
		{nil, Summary{}},
		{[]float64{5}, Summary{Median: 5, Min: 5, Max: 5, N: 1}},
		{[]float64{3, 1, 2}, Summary{Median: 2, Min: 1, Max: 3, N: 3}},
		{[]float64{4, 1, 3, 2}, Summary{Median: 2.5, Min: 1, Max: 4, N: 4}},
		{[]float64{math.NaN(), 7, 9}, Summary{Median: 8, Min: 7, Max: 9, N: 2}},
	}
	for _, c := range cases {
		if got := summarize(c.in); got != c.want {
			t.Errorf("summarize(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestIdealRatio(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	cases := []struct {
		s, p, c, m int
		want       float64
	}{
		{64, 4, 1, 64, 66.0 / 18.0},   // 256 MiB at P=4: the 3.67×
		{16, 4, 1, 64, 18.0 / 6.0},    // 64 MiB
		{128, 4, 1, 64, 130.0 / 34.0}, // 512 MiB
		{1, 4, 1, 64, 1},              // one segment: nothing to overlap
		{5, 1, 1, 64, 1},              // P=1 is the baseline
		{5, 4, 1, 2, 7.0 / 5.0},       // global cap below P
		{5, 4, 100, 64, 7.0 / 10.0},   // 100×20 MiB: 500 APPENDs through 64 slots
		{5, 4, 10, 64, 7.0 / 4.0},     // 10×20 MiB: 50 APPENDs, 40 slots
		{0, 4, 1, 64, 0},
	}
	for _, c := range cases {
		if got := idealRatio(c.s, c.p, c.c, c.m); !near(got, c.want) {
			t.Errorf("idealRatio(S=%d, P=%d, C=%d, M=%d) = %v, want %v", c.s, c.p, c.c, c.m, got, c.want)
		}
	}
	if got := segmentsOf(256<<20, baselineSegment); got != 64 {
		t.Errorf("segmentsOf(256MiB) = %d", got)
	}
	if got := segmentsOf(20<<20+1, baselineSegment); got != 6 {
		t.Errorf("segmentsOf(20MiB+1) = %d", got)
	}
}

func TestFillRatios(t *testing.T) {
	rows := []Row{
		{Mode: modeBaseline, SizeBytes: 256 << 20, Concurrency: 1, MBps: Summary{Median: 50, N: 3}},
		{Mode: modeGRPC, SizeBytes: 256 << 20, Concurrency: 1, Parallelism: 4, MaxInFlight: 64, MBps: Summary{Median: 165, N: 3}, CPUSecPerGiB: Summary{Median: 1.5, N: 3}},
		{Mode: modeREST, SizeBytes: 256 << 20, Concurrency: 1, Parallelism: 4, MaxInFlight: 64}, // every run failed
		{Mode: modeRelay, SizeBytes: 256 << 20, Concurrency: 1, Parallelism: 4, MaxInFlight: 4, MBps: Summary{Median: 150, N: 3}, CPUSecPerGiB: Summary{Median: 1.2, N: 3}},
		{Mode: modeGRPC, Variant: "p8", SizeBytes: 256 << 20, Concurrency: 1, Parallelism: 8, MaxInFlight: 64, MBps: Summary{Median: 165, N: 3}},
		{Mode: modeHop, SizeBytes: 256 << 20, Concurrency: 1, MBps: Summary{Median: 900, N: 3}, CPUSecPerGiB: Summary{Median: 0.3, N: 3}},
	}
	fillRatios(rows, 50*time.Millisecond)
	if rows[0].Ratio != 1 || rows[0].Ideal != 0 || rows[0].RelayCPURatio != 0 {
		t.Errorf("baseline row: %+v", rows[0])
	}
	if math.Abs(rows[1].Ratio-3.3) > 1e-9 || math.Abs(rows[1].Ideal-66.0/18) > 1e-9 || math.Abs(rows[1].OfIdeal-3.3/(66.0/18)) > 1e-9 {
		t.Errorf("grpc row: %+v", rows[1])
	}
	if math.Abs(rows[1].RelayCPURatio-1.25) > 1e-9 || rows[3].RelayCPURatio != 1 {
		t.Errorf("relay CPU ratios: grpc %v, relay %v", rows[1].RelayCPURatio, rows[3].RelayCPURatio)
	}
	if rows[2].Ratio != 0 || rows[2].OfIdeal != 0 || rows[2].RelayCPURatio != 0 {
		t.Errorf("failed row got a ratio: %+v", rows[2])
	}
	if rows[5].RelayCPURatio != 0 {
		t.Errorf("the hop is not a relay path, got × relay %v", rows[5].RelayCPURatio)
	}
	if math.Abs(rows[3].Ideal-66.0/18) > 1e-9 { // the relay's own P=4
		t.Errorf("relay ideal = %v", rows[3].Ideal)
	}
	if math.Abs(rows[4].Ideal-66.0/10) > 1e-9 || rows[5].Ideal != 0 { // P=8: 2+8 rounds; the hop has none
		t.Errorf("P=8 ideal = %v, hop ideal %v", rows[4].Ideal, rows[5].Ideal)
	}
	fillRatios(rows, 0)
	if rows[1].Ideal != 66.0/18 { // unchanged from before: no latency, no new ideal
		t.Errorf("ideal recomputed without latency: %+v", rows[1])
	}
}

func TestMarkdown(t *testing.T) {
	rep := Report{Date: "2026-01-02T03:04:05Z", GoVersion: "go version go1.26 linux/amd64", CPU: "Test CPU", Cores: 2,
		LoadBefore: "1.00 1.00 1.00", LoadAfter: "2.00 1.00 1.00", X: xSink, Runs: 3, GRPCChunk: 256 << 10, Parallelism: 4, MaxInFlight: 64,
		Notes:    []string{"a note"},
		Variants: []variant{{}, {Name: "seg8", Args: []string{"--segment-size", "8MiB"}}},
		Rows: []Row{
			{Scenario: "lat50ms/1x64MiB", Path: modeBaseline, Mode: modeBaseline, MBps: Summary{Median: 40, Min: 39.5, Max: 41, N: 3}, Ratio: 1,
				FirstAppendMS: Summary{Median: 101, N: 3}, FirstBeforeEnd: 3, Uploads: 3, Verified: 3,
				XCPUSecPerGiB: Summary{Median: 3.5, Min: 3, Max: 4, N: 3}, ClientCPUSecPerGiB: Summary{Median: 0.25, Min: 0.25, Max: 0.25, N: 3}},
			{Scenario: "lat50ms/1x64MiB", Path: modeREST, Mode: modeREST, MBps: Summary{Median: 120, Min: 110, Max: 130, N: 3}, Ratio: 3, Ideal: 3, OfIdeal: 1,
				FirstAppendMS: Summary{Median: 160, N: 3}, FirstBeforeEnd: 3, Uploads: 3, Verified: 2, Errors: 1,
				PeakRSSMiB: 60.4, CPUSecPerGiB: Summary{Median: 1.234, Min: 1.2, Max: 1.3, N: 2}, RelayCPURatio: 1.1, ErrorSamples: []string{"sha256 mismatch"}},
			{Scenario: "lat0/1x64MiB", Path: modeHop, Mode: modeHop, MBps: Summary{Median: 900, N: 1}, Uploads: 1, Verified: 1,
				CPUSecPerGiB: Summary{Median: 0.3, N: 1}},
		},
		Targets:  []Target{{Name: "rest CPU", Measured: "1.23 s/GiB", Met: met(false)}, {Name: "info", Measured: "x"}},
		Failures: []string{"lat0/1x480MiB: mediagw exited"},
	}
	md := markdown(rep)
	for _, want := range []string{
		"## mediagw benchmark, 2026-01-02T03:04:05Z",
		"CPU Test CPU, 2 cores",
		"full mode, X = sink, 3 run(s) per row",
		"gRPC chunks of 256KiB",
		"- variant seg8: mediagw --segment-size 8MiB\n",
		"- a note\n",
		"| scenario | path | MB/s median (min–max) |",
		"| lat50ms/1x64MiB | baseline | 40.0 (39.5–41.0) | 1.00 | – | – | 101 | 3/3 | – | – | – | 3.50 (3.00–4.00) | 0.25 (0.25–0.25) | 0 | 3/3 |",
		"| lat50ms/1x64MiB | rest | 120.0 (110.0–130.0) | 3.00 | 3.00 | 1.00 | 160 | 3/3 | 60 | 1.23 (1.20–1.30) | 1.10 | – | – | 1 | 2/3 |",
		"| lat0/1x64MiB | hop | 900.0 | – | – | – | – | – | – | 0.30 | – | – | – | 0 | 1/1 |",
		"| rest CPU | 1.23 s/GiB | **no** |",
		"| info | x | – |",
		"- lat0/1x480MiB: mediagw exited",
		"- lat50ms/1x64MiB rest: sha256 mismatch",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	header := strings.Count(strings.Split(md, "\n|---")[0][strings.LastIndex(strings.Split(md, "\n|---")[0], "\n"):], "|")
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| lat") && strings.Count(line, "|") != header {
			t.Errorf("row has %d cells, header %d: %s", strings.Count(line, "|"), header, line)
		}
	}
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{512 << 20: "512MiB", 256 << 10: "256KiB", 1000: "1000B", 3<<20 + 1: "3145729B"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestGen checks that Read, Chunk and WriteTo produce the same bytes, that
// digest hashes them, and that blocks are tagged.
func TestGen(t *testing.T) {
	const size = 3*blockSize + 7
	g := newGen(size)
	var viaRead bytes.Buffer
	buf := make([]byte, 12345) // odd sizes cross tags and block ends
	for {
		n, err := g.Read(buf)
		viaRead.Write(buf[:n])
		if err == io.EOF {
			break
		}
	}
	if viaRead.Len() != size || g.doneAt.IsZero() {
		t.Fatalf("Read gave %d bytes (doneAt %v)", viaRead.Len(), g.doneAt)
	}
	var viaChunk bytes.Buffer
	gc := &gen{id: g.id, size: size}
	for _, n := range []int{5, 11, 256 << 10, blockSize, 100} {
		viaChunk.Write(gc.Chunk(n))
	}
	for p := gc.Chunk(256 << 10); p != nil; p = gc.Chunk(256 << 10) {
		viaChunk.Write(p)
	}
	var viaWriteTo bytes.Buffer
	if _, err := (&gen{id: g.id, size: size}).WriteTo(&viaWriteTo); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(viaRead.Bytes(), viaChunk.Bytes()) || !bytes.Equal(viaRead.Bytes(), viaWriteTo.Bytes()) {
		t.Fatal("Read, Chunk and WriteTo disagree")
	}
	data := viaRead.Bytes()
	if string(data[4:8]) != "ftyp" {
		t.Errorf("bytes 4..8 = %q, want ftyp", data[4:8])
	}
	sum := sha256.Sum256(data)
	if got := digest(g.id, size); got != hex.EncodeToString(sum[:]) {
		t.Errorf("digest = %s, want %s", got, hex.EncodeToString(sum[:]))
	}
	// Every block differs from every other, and from another upload's.
	other := make([]byte, size)
	if _, err := io.ReadFull(newGen(size), other); err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 3; k++ {
		blk := data[k*blockSize : (k+1)*blockSize]
		if bytes.Equal(blk, other[k*blockSize:(k+1)*blockSize]) {
			t.Errorf("block %d equal across uploads", k)
		}
		if k > 0 && bytes.Equal(blk, data[:blockSize]) {
			t.Errorf("block %d equals block 0", k)
		}
		from, to := tagLen, min(blockSize, size-len(moovBox)-k*blockSize)
		if k == 0 {
			from = headerLen // the id and the mdat header
		}
		if !bytes.Equal(blk[from:to], dataBlock[from:to]) {
			t.Errorf("block %d differs from dataBlock past its tag", k)
		}
	}
	// The upload is a movie mediagw's media checks take: an mdat, then
	// the moov of a 2-second H.264 video.
	in := inspect.New("video/mp4", size)
	_, _ = in.Write(data)
	r := in.Report()
	if vs := rules.Check("tweet_video", r, true); r.Problem != "" || len(vs) > 0 || r.Format != inspect.FormatMP4 ||
		r.Faststart || r.Video.Codec != "h264" || r.Duration != 2*time.Second {
		t.Errorf("inspected as %+v, violations %v", r, vs)
	}
}

func TestReadyLines(t *testing.T) {
	if addr, ok := xfakeReady("xfake listening on http://127.0.0.1:4321"); !ok || addr != "http://127.0.0.1:4321" {
		t.Errorf("xfakeReady = %q, %v", addr, ok)
	}
	if _, ok := xfakeReady(`time=... level=INFO msg="xfake shutting down"`); ok {
		t.Error("xfakeReady matched another line")
	}
	line := `{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"mediagw serving","grpc_addr":"127.0.0.1:1","http_addr":"127.0.0.1:2"}`
	if v, ok := mediagwReady(line); !ok || v != "127.0.0.1:1 127.0.0.1:2" {
		t.Errorf("mediagwReady = %q, %v", v, ok)
	}
	if _, ok := mediagwReady(`{"msg":"upload"}`); ok {
		t.Error("mediagwReady matched another line")
	}
	if v, ok := serveReady(roleSink)("bench-sink listening on http://127.0.0.1:7"); !ok || v != "http://127.0.0.1:7" {
		t.Errorf("serveReady(sink) = %q, %v", v, ok)
	}
	if _, ok := serveReady(roleRelay)("bench-sink listening on http://127.0.0.1:7"); ok {
		t.Error("serveReady(relay) matched the sink's line")
	}
	if !isServe([]string{"-serve", "sink"}) || !isServe([]string{"--serve=relay"}) || isServe([]string{"-quick"}) || isServe(nil) {
		t.Error("isServe misreads its arguments")
	}
}

func TestScenarios(t *testing.T) {
	names := func(c config) string {
		var out []string
		for _, s := range c.scenarios {
			out = append(out, s.Name)
		}
		return strings.Join(out, " ")
	}
	cfg, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(cfg), "lat0/1x480MiB lat50ms/1x256MiB lat0/1x64MiB lat0/100x20MiB"; got != want || cfg.runs != 5 || cfg.x != xSink {
		t.Errorf("default scenarios = %s (runs %d, x %s), want %s (runs 5, sink)", got, cfg.runs, cfg.x, want)
	}
	cfg, err = parseConfig([]string{"-quick", "-x", "emulator"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(cfg), "lat0/1x16MiB lat0/1x64MiB lat0/10x20MiB lat50ms/1x16MiB lat50ms/1x64MiB lat50ms/10x20MiB bw40MB/1x16MiB"; got != want || cfg.runs != 3 {
		t.Errorf("quick emulator scenarios = %s (runs %d), want %s (runs 3)", got, cfg.runs, want)
	}
	cfg, err = parseConfig([]string{"-scenarios", "lat0.05s/bw5MiB/2x3MiB", "-x", "emulator"})
	if err != nil {
		t.Fatal(err)
	}
	if sc := cfg.scenarios[0]; sc.Name != "lat50ms/bw5MiB/2x3MiB" || sc.Latency != 50*time.Millisecond || sc.Bandwidth != "5MiB" ||
		sc.Concurrency != 2 || sc.Size != 3<<20 {
		t.Errorf("parsed %+v", sc)
	}
	for _, bad := range [][]string{
		{"-modes", "ftp"},
		{"-scenarios", "lots"},
		{"-scenarios", "lat0/0x1MiB"},
		{"-scenarios", "latfast/1x1MiB"},
		{"-scenarios", "bw40MB/1x64MiB"}, // bandwidth caps need the emulator
		{"-x", "real"},
		{"-sink-digest", "md5"},
		{"-variants", "=--ledger x"},
		{"-variants", "a=--x;a=--y"},
		{"-fault-rate", "2", "-adversarial"},
	} {
		if _, err := parseConfig(bad); err == nil {
			t.Errorf("parseConfig(%q) accepted", bad)
		}
	}
}

func TestFlagInt(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
	}{
		{nil, 4},
		{[]string{"--parallelism", "8"}, 8},
		{[]string{"-parallelism=6", "--ledger", "/x"}, 6},
		{[]string{"--parallelism", "8", "--parallelism", "2"}, 2},
		{[]string{"--parallelism"}, 4},
		{[]string{"--parallelism-x", "9"}, 4},
	} {
		if got := flagInt(c.args, "parallelism", 4); got != c.want {
			t.Errorf("flagInt(%q) = %d, want %d", c.args, got, c.want)
		}
	}
}

func TestVariantsAndPaths(t *testing.T) {
	cfg, err := parseConfig([]string{"-variants", "ledger=--ledger /tmp/x.db; seg8=--segment-size 8MiB --parallelism 8"})
	if err != nil {
		t.Fatal(err)
	}
	want := []variant{{}, {Name: "ledger", Args: []string{"--ledger", "/tmp/x.db"}}, {Name: "seg8", Args: []string{"--segment-size", "8MiB", "--parallelism", "8"}}}
	if fmt.Sprint(cfg.variants) != fmt.Sprint(want) {
		t.Errorf("variants = %v, want %v", cfg.variants, want)
	}
	pathNames := func(sc scenario) string {
		var out []string
		for _, p := range cfg.paths(sc) {
			out = append(out, p.name())
		}
		return strings.Join(out, " ")
	}
	if got, want := pathNames(scenario{Concurrency: 1}), "baseline grpc grpc+ledger grpc+seg8 rest rest+ledger rest+seg8 relay hop grpc-hop"; got != want {
		t.Errorf("single upload at lat0: paths %s, want %s", got, want)
	}
	if got, want := pathNames(scenario{Concurrency: 1, Latency: time.Millisecond}), "baseline grpc grpc+ledger grpc+seg8 rest rest+ledger rest+seg8 relay"; got != want {
		t.Errorf("with latency: paths %s, want %s", got, want)
	}
	if got, want := pathNames(scenario{Concurrency: 100}), "baseline grpc grpc+ledger grpc+seg8 rest rest+ledger rest+seg8"; got != want {
		t.Errorf("concurrent: paths %s, want %s", got, want)
	}
	cfg.adversarial = true
	cfg.filter = regexp.MustCompile("^adv/(starvation|faults)")
	if got, want := strings.Join(cfg.advRuns(), " "), "adv/starvation adv/faults adv/starvation+ledger adv/faults+ledger adv/starvation+seg8 adv/faults+seg8"; got != want {
		t.Errorf("advRuns = %s, want %s", got, want)
	}
}

// TestFlagNames reads the flags of a real Go binary's --help: this test
// binary's own.
func TestFlagNames(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	names := flagNames(context.Background(), self)
	for _, f := range []string{"test.run", "test.v", "test.count"} {
		if !names[f] {
			t.Errorf("flagNames lacks -%s: %v", f, names)
		}
	}
	if flagNames(context.Background(), t.TempDir()+"/missing") != nil {
		t.Error("a binary that does not run gave flag names")
	}
}

func TestTargets(t *testing.T) {
	cpu := func(m float64) Summary { return Summary{Median: m, Min: m, Max: m, N: 3} }
	rows := []Row{
		{Scenario: "lat0/1x480MiB", Mode: modeBaseline, Path: modeBaseline, X: xSink, Latency: "0s", SizeBytes: 480 << 20, Concurrency: 1, XCPUSecPerGiB: cpu(0.6)},
		{Scenario: "lat0/1x480MiB", Mode: modeREST, Path: modeREST, Latency: "0s", SizeBytes: 480 << 20, Concurrency: 1,
			CPUSecPerGiB: cpu(1.1), RelayCPURatio: 1.1, PeakRSSMiB: 50, Uploads: 5, FirstBeforeEnd: 5},
		{Scenario: "lat0/1x480MiB", Mode: modeGRPC, Path: modeGRPC, Latency: "0s", SizeBytes: 480 << 20, Concurrency: 1,
			CPUSecPerGiB: cpu(1.3), RelayCPURatio: 1.3, PeakRSSMiB: 70, Uploads: 5, FirstBeforeEnd: 4},
		{Scenario: "lat0/1x480MiB", Mode: modeRelay, Path: modeRelay, Latency: "0s", SizeBytes: 480 << 20, Concurrency: 1, CPUSecPerGiB: cpu(1)},
		{Scenario: "lat0/1x480MiB", Mode: modeHop, Path: modeHop, Latency: "0s", SizeBytes: 480 << 20, Concurrency: 1, CPUSecPerGiB: cpu(0.3), ClientCPUSecPerGiB: cpu(0.4)},
		{Scenario: "lat50ms/1x64MiB", Mode: modeREST, Path: modeREST, Latency: "50ms", SizeBytes: 64 << 20, Concurrency: 1, Ratio: 2.8, Ideal: 3},
		{Scenario: "lat50ms/1x64MiB", Mode: modeRelay, Path: modeRelay, Latency: "50ms", SizeBytes: 64 << 20, Concurrency: 1, Ratio: 2.9, Ideal: 3},
		{Scenario: "lat0/100x20MiB", Mode: modeREST, Path: modeREST, Latency: "0s", SizeBytes: 20 << 20, Concurrency: 100,
			Uploads: 500, Verified: 500, PeakRSSMiB: 500, FirstBeforeEnd: 500},
		{Scenario: "lat0/1x480MiB", Mode: modeREST, Path: "rest+x", Variant: "x", Latency: "0s", SizeBytes: 480 << 20, Concurrency: 1,
			CPUSecPerGiB: cpu(9), PeakRSSMiB: 900},
	}
	adv := &Adversarial{Faults: []FaultResult{{Name: advFaults, Paths: []FaultPath{{Path: "all", Uploads: 10, Verified: 10, P99: 6}}}}}
	got := map[string]string{}
	for _, tg := range targets(rows, adv) {
		got[tg.Name] = tg.Measured + " " + tg.verdict()
	}
	for name, want := range map[string]string{
		"mediagw rest CPU ≤ 1.2 s/GiB (lat0/1x480MiB)":                                           "1.10 (1.10–1.10) s/GiB yes",
		"mediagw grpc CPU ≤ 1.2 s/GiB (lat0/1x480MiB)":                                           "1.30 (1.30–1.30) s/GiB **no**",
		"mediagw rest CPU ≤ 1.0× the bare relay's (goal; lat0/1x480MiB)":                         "1.10× **no**",
		"CPU s/GiB per process (lat0/1x480MiB)":                                                  "sink receiving the baseline 0.60; rest 1.10; grpc 1.30; relay 1.00; hop 0.30 server + 0.40 client; rest+x 9.00 –",
		"rest ≥ 2.70× (0.9 of ideal) baseline at 50 ms (lat50ms/1x64MiB; ideal 3.00×)":           "2.80× (bare relay 2.90×) yes",
		"rest lat0/100x20MiB: 0 errors, all byte-exact, peak RSS ≤ 512 MiB":                      "0 errors, 500/500 byte-exact, 500 MiB yes",
		"one upload: mediagw peak RSS ≤ 64 MiB (largest over single-upload rows)":                "70 MiB (lat0/1x480MiB grpc) **no**",
		"first APPEND reaches X before the caller has sent its last byte (every mediagw upload)": "not every upload (see the table) **no**",
		"adv/faults: p99 upload time ≤ 5 s under faults":                                         "p99 6.00 s, max 0.00 s, 10/10 byte-exact **no**",
	} {
		if got[name] != want {
			t.Errorf("target %q = %q, want %q", name, got[name], want)
		}
	}
	for name := range got {
		if strings.Contains(name, "1.5×") {
			t.Errorf("a target without its row: %q", name)
		}
	}
}

func TestPercentileAndCounts(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i)
	}
	if p50, p99, p100 := percentile(xs, 50), percentile(xs, 99), percentile(xs, 100); p50 != 50 || p99 != 99 || p100 != 100 {
		t.Errorf("percentiles 50/99/100 = %v/%v/%v", p50, p99, p100)
	}
	if !math.IsNaN(percentile(nil, 99)) || percentile([]float64{7}, 99) != 7 {
		t.Error("percentile of 0 or 1 samples")
	}
	if got := counts(map[string]int{"OK": 190, "ResourceExhausted": 10, "Aborted": 10}); got != "OK 190, Aborted 10, ResourceExhausted 10" {
		t.Errorf("counts = %q", got)
	}
	if got := outcome(&httpError{status: 429}); got != "HTTP 429" {
		t.Errorf("outcome(HTTP 429) = %q", got)
	}
	if got := outcome(fmt.Errorf("send: %w", status.Error(codes.ResourceExhausted, "full"))); got != "ResourceExhausted" {
		t.Errorf("outcome(wrapped status) = %q", got)
	}
	if got := outcome(fmt.Errorf("dial: %w", context.DeadlineExceeded)); got != "timeout" {
		t.Errorf("outcome(deadline) = %q", got)
	}
	if got := outcome(errors.New("connection reset")); got != "transport" {
		t.Errorf("outcome(reset) = %q", got)
	}
}
