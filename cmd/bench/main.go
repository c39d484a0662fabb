// Command bench measures mediagw against the sequential upload algorithm of
// xurl and X's sample code, with real processes on loopback.
//
// It builds cmd/xfake (the X emulator) and cmd/mediagw into a temporary
// directory, and for every scenario starts a fresh emulator and one fresh
// mediagw per mediagw path, so that peak RSS (VmHWM, and VmRSS sampled
// every 10 ms) and CPU time (utime+stime from /proc/<pid>/stat) are those
// of the real mediagw process. Three upload paths are compared:
//
//   - baseline: INIT, one 4 MiB multipart APPEND at a time, FINALIZE,
//     straight to the emulator's v2 endpoints with a bearer token;
//   - grpc: mediagw's Upload client stream, in -grpc-chunk messages;
//   - rest: POST /v1/media:upload with the raw body streamed from a
//     generator.
//
// Runs are interleaved (baseline, grpc, rest, then rotated). Upload data
// is a fixed 1 MiB random block repeated, each block tagged with the
// upload id and the block index; after timing, every upload is checked
// byte-exact against the SHA-256 the emulator computed.
//
// Usage (from the module root):
//
//	go run ./cmd/bench            # full run, markdown table on stdout
//	go run ./cmd/bench -quick     # under two minutes: 2 runs, 16MiB and 64MiB,
//	                              # 10x20MiB concurrent, bandwidth scenario at 16MiB
//	go run ./cmd/bench -json      # JSON instead of markdown
//	go run ./cmd/bench -json-file bench.json  # markdown, and JSON to a file
//	go run ./cmd/bench -run 'lat50ms/1x' -modes baseline,rest -runs 5
//	go run ./cmd/bench -run 'lat0/1x512' -perf-dir /tmp/perf  # perf profiles of mediagw
//
// For investigations, -perf-dir records each mediagw process with
// `perf record -g`, -log-dir keeps every child's output and -mediagw-env
// passes extra environment (GODEBUG=gctrace=1, GOMEMLIMIT=...) to mediagw.
//
// Progress goes to stderr. Interrupting stops every child process. The exit
// status is 1 when any upload failed or was not byte-exact.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"

	"mediagw/upstream/xfake"
)

// config is the parsed command line.
type config struct {
	quick       bool
	jsonOut     bool
	jsonFile    string
	runs        int
	modes       []string
	filter      *regexp.Regexp
	latencies   []time.Duration
	sizes       []int64
	concurrent  string
	bandwidth   string
	bwSize      int64
	grpcChunk   int
	parallelism int
	maxInFlight int
	segmentSize string
	timeout     time.Duration
	warmup      bool
	spillDir    string
	perfDir     string
	mediagwEnv  []string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

func parseConfig(args []string) (config, error) {
	var c config
	var modes, run, lats, sizes, bwSize, chunk string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&c.quick, "quick", false, "quick mode: 2 runs, sizes 16MiB,64MiB, 10x20MiB concurrent, bandwidth scenario at 16MiB (defaults of the flags below change accordingly unless given)")
	fs.BoolVar(&c.jsonOut, "json", false, "print the report as JSON instead of markdown")
	fs.StringVar(&c.jsonFile, "json-file", "", "also write the report as JSON to this file")
	fs.IntVar(&c.runs, "runs", 3, "runs per scenario and path (the median is reported)")
	fs.StringVar(&modes, "modes", "baseline,grpc,rest", "upload paths to measure")
	fs.StringVar(&run, "run", "", "only scenarios whose name matches this regexp (e.g. 'lat0/', '1x512MiB', 'bw')")
	fs.StringVar(&lats, "latencies", "0,50ms", "emulator --latency values")
	fs.StringVar(&sizes, "sizes", "64MiB,256MiB,512MiB", "single-upload sizes, run at every latency")
	fs.StringVar(&c.concurrent, "concurrent", "100x20MiB", "simultaneous uploads NxSIZE, run at every latency; empty for none")
	fs.StringVar(&c.bandwidth, "bandwidth", "40MB", "emulator per-connection --bandwidth of the bandwidth scenario (latency 0); empty for none")
	fs.StringVar(&bwSize, "bandwidth-size", "64MiB", "upload size of the bandwidth scenario")
	fs.StringVar(&chunk, "grpc-chunk", "32752", "gRPC chunk message size (32752 = 32 KiB minus framing, which fits gRPC's pooled buffers)")
	fs.IntVar(&c.parallelism, "parallelism", 4, "mediagw --parallelism (APPENDs in flight per upload)")
	fs.IntVar(&c.maxInFlight, "max-in-flight", 64, "mediagw --max-in-flight (APPENDs in flight in total)")
	fs.StringVar(&c.segmentSize, "segment-size", "", "mediagw --segment-size (empty: mediagw's default, 4MiB)")
	fs.BoolVar(&c.warmup, "warmup", true, "send one untimed upload (at most 16MiB) per path before each scenario's runs")
	fs.StringVar(&c.spillDir, "spill-dir", defaultSpillDir(), "where the emulator spills segments (tmpfs keeps disk writes out of the figures)")
	fs.StringVar(&c.perfDir, "perf-dir", "", "record each mediagw process with `perf record -g` into this directory during the timed runs")
	fs.Func("mediagw-env", "extra KEY=VALUE environment for mediagw, repeatable (e.g. GOMEMLIMIT=400MiB, for experiments)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		c.mediagwEnv = append(c.mediagwEnv, v)
		return nil
	})
	fs.StringVar(&logDir, "log-dir", "", "keep the output of every emulator and mediagw process in this directory")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "longest time one run of one path may take")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if c.quick {
		for name, v := range map[string]string{"runs": "2", "sizes": "16MiB,64MiB", "concurrent": "10x20MiB", "bandwidth-size": "16MiB"} {
			if !given[name] {
				_ = fs.Set(name, v)
			}
		}
	}
	c.modes = splitList(modes)
	for _, m := range c.modes {
		if m != modeBaseline && m != modeGRPC && m != modeREST {
			return c, fmt.Errorf("-modes: unknown path %q (want baseline, grpc, rest)", m)
		}
	}
	var err error
	if c.filter, err = regexp.Compile(run); err != nil {
		return c, fmt.Errorf("-run: %w", err)
	}
	for _, l := range splitList(lats) {
		d, err := time.ParseDuration(l)
		if err != nil {
			return c, fmt.Errorf("-latencies: %w", err)
		}
		c.latencies = append(c.latencies, d)
	}
	for _, s := range splitList(sizes) {
		n, err := xfake.ParseSize(s)
		if err != nil || n < 16 {
			return c, fmt.Errorf("-sizes: bad size %q", s)
		}
		c.sizes = append(c.sizes, n)
	}
	if c.bwSize, err = xfake.ParseSize(bwSize); err != nil || c.bwSize < 16 {
		return c, fmt.Errorf("-bandwidth-size: bad size %q", bwSize)
	}
	n, err := xfake.ParseSize(chunk)
	if err != nil || n < 1 || n > 3<<20 {
		return c, fmt.Errorf("-grpc-chunk: want 1B..3MiB, got %q", chunk)
	}
	c.grpcChunk = int(n)
	if c.runs < 1 || c.parallelism < 1 || c.maxInFlight < 1 {
		return c, errors.New("-runs, -parallelism and -max-in-flight must be at least 1")
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// scenarios lists the scenarios the configuration selects.
func (c config) scenarios() ([]scenario, error) {
	var all []scenario
	latName := func(d time.Duration) string {
		if d == 0 {
			return "lat0"
		}
		return "lat" + d.String()
	}
	var cn int
	var csize int64
	if c.concurrent != "" {
		ns, ss, ok := strings.Cut(c.concurrent, "x")
		_, err := fmt.Sscan(ns, &cn)
		var err2 error
		csize, err2 = xfake.ParseSize(ss)
		if !ok || err != nil || err2 != nil || cn < 1 || csize < 16 {
			return nil, fmt.Errorf("-concurrent: want NxSIZE (e.g. 100x20MiB), got %q", c.concurrent)
		}
	}
	for _, l := range c.latencies {
		for _, s := range c.sizes {
			all = append(all, scenario{Name: fmt.Sprintf("%s/1x%s", latName(l), sizeText(s)), Latency: l, Size: s, Concurrency: 1})
		}
		if cn > 0 {
			all = append(all, scenario{Name: fmt.Sprintf("%s/%dx%s", latName(l), cn, sizeText(csize)), Latency: l, Size: csize, Concurrency: cn})
		}
	}
	if c.bandwidth != "" {
		if _, err := xfake.ParseSize(c.bandwidth); err != nil {
			return nil, fmt.Errorf("-bandwidth: %w", err)
		}
		all = append(all, scenario{Name: fmt.Sprintf("bw%s/1x%s", c.bandwidth, sizeText(c.bwSize)), Bandwidth: c.bandwidth, Size: c.bwSize, Concurrency: 1})
	}
	var out []scenario
	for _, s := range all {
		if c.filter.MatchString(s.Name) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scenario selected")
	}
	return out, nil
}

func run(ctx context.Context, args []string) error {
	cfg, err := parseConfig(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	scs, err := cfg.scenarios()
	if err != nil {
		return err
	}
	began := time.Now()
	rep := Report{Date: began.UTC().Format(time.RFC3339), GoVersion: goVersion(ctx), CPU: cpuModel(), Cores: runtime.NumCPU(),
		LoadBefore: loadAvg(), Quick: cfg.quick, Runs: cfg.runs, GRPCChunk: cfg.grpcChunk,
		Parallelism: cfg.parallelism, MaxInFlight: cfg.maxInFlight}
	rep.Notes = []string{
		"MB/s = 10^6 bytes/s of all uploads of a run together (wall time from the first byte sent to the last answer); ratios compare medians within a scenario",
		"baseline = INIT + sequential 4 MiB multipart APPENDs + FINALIZE straight to the emulator (xurl / X sample code); grpc and rest go through a fresh mediagw process per scenario and path",
		"ideal × = (2+S)/(2+ceil(C·S/min(C·P, M))) for latency scenarios (S 4 MiB segments per upload, C uploads at once, P per-upload and M global APPEND limits); – where latency is 0",
		"1st APPEND ms = emulator's first_append_at − client's first send, median over uploads; peak RSS = max(VmHWM, VmRSS sampled every 10 ms) of the mediagw process; CPU = utime+stime of mediagw during the timed runs",
	}

	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "mediagw-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	defer stopAll()
	logf("building cmd/xfake and cmd/mediagw")
	b := &bench{cfg: cfg, tmp: tmp, spillRoot: cfg.spillDir}
	if b.xfakeBin, b.mediagwBin, err = buildBinaries(ctx, root, tmp); err != nil {
		return err
	}
	for _, sc := range scs {
		logf("scenario %s", sc.Name)
		rows, err := b.runScenario(ctx, sc)
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted during %s", sc.Name)
		}
		if err != nil {
			logf("scenario %s failed: %v", sc.Name, err)
			rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %s", sc.Name, trim(err.Error(), 500)))
			continue
		}
		rep.Rows = append(rep.Rows, rows...)
	}
	rep.Seconds = time.Since(began).Seconds()
	rep.LoadAfter = loadAvg()
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if cfg.jsonFile != "" {
		if err := os.WriteFile(cfg.jsonFile, append(js, '\n'), 0o644); err != nil {
			return err
		}
	}
	if cfg.jsonOut {
		fmt.Printf("%s\n", js)
	} else {
		fmt.Print(markdown(rep))
	}
	errs := 0
	for _, r := range rep.Rows {
		errs += r.Errors
	}
	if errs > 0 || len(rep.Failures) > 0 {
		return fmt.Errorf("%d upload error(s), %d failed scenario(s)", errs, len(rep.Failures))
	}
	return nil
}

// defaultSpillDir is /dev/shm when it is a writable directory, else the
// system temp directory.
func defaultSpillDir() string {
	if f, err := os.CreateTemp("/dev/shm", "mediagw-bench-probe-"); err == nil {
		f.Close()
		os.Remove(f.Name())
		return "/dev/shm"
	}
	return os.TempDir()
}

func goVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "go", "version").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
