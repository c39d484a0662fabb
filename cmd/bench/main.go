// Command bench measures mediagw's own cost and speed against physical
// references and the sequential upload algorithm of xurl and X's sample
// code, with every party a real process on loopback.
//
// It builds cmd/xfake and cmd/mediagw into a temporary directory and, for
// every scenario, starts a fresh X and one fresh process per upload path,
// so that peak RSS (VmHWM, and VmRSS sampled every 10 ms) and CPU time
// (utime+stime from /proc/<pid>/stat) are each process's own. X is, with
// -x sink (the default), the sink: a minimal X that this binary runs as a
// process of its own (bench -serve sink), speaking the v2 endpoints
// mediagw uses, parsing multipart as it streams and hashing the bytes in
// segment order, with nothing on disk; with -x emulator it is cmd/xfake.
// The paths compared are:
//
//   - baseline: INIT, one 4 MiB multipart APPEND at a time, FINALIZE,
//     straight to X with a bearer token (xurl, X's sample code);
//   - grpc: mediagw's Upload client stream, in -grpc-chunk messages;
//   - rest: POST /v1/media:upload with the raw body streamed;
//   - relay: the bare relay (bench -serve relay), a process that reads a
//     raw POST body in 4 MiB pieces and APPENDs each to X, 4 in flight,
//     nothing else: the CPU any relay pays, mediagw's reference;
//   - hop: the bytes POSTed over one loopback HTTP connection to a process
//     that discards them (bench -serve discard): the cost of one hop.
//
// Runs are interleaved (rotating the order of the paths). Upload data is a
// fixed 1 MiB random block repeated, each block tagged with the upload id
// and the block index; after timing, every upload is checked byte-exact
// against the SHA-256 X computed.
//
// The default scenarios against the sink are the project's targets: CPU
// s/GiB on one 480 MiB upload (lat0/1x480MiB), the speed-up at 50 ms
// (lat50ms/1x256MiB), the speed-up without latency (lat0/1x64MiB) and 100
// concurrent uploads (lat0/100x20MiB); the report ends with a table of the
// targets and whether this run met them. -adversarial adds rows that
// repeat hostile workloads: slow callers starving a legitimate upload
// (adv/starvation), 200 concurrent uploads in 4 MiB and 32 KiB gRPC chunks
// (adv/memory-4MiB, adv/memory-32KiB), and 1000 uploads through the
// emulator injecting faults (adv/faults).
//
// Usage (from the module root):
//
//	go run ./cmd/bench                 # full run, markdown on stdout (under 10 minutes)
//	go run ./cmd/bench -quick          # under two minutes
//	go run ./cmd/bench -adversarial -run '^adv/'   # the adversarial rows only
//	go run ./cmd/bench -x emulator     # the emulator's scenario matrix
//	go run ./cmd/bench -scenarios lat50ms/1x512MiB -modes baseline,rest -runs 5
//	go run ./cmd/bench -run 1x480MiB -variants 'p8=--parallelism 8'   # a variant next to the default
//	go run ./cmd/bench -json-file bench.json   # markdown, and JSON to a file
//
// -variants 'NAME=FLAGS;NAME2=FLAGS' adds mediagw configurations: every
// grpc and rest path runs once more per variant (as grpc+NAME, rest+NAME),
// each in a mediagw of its own started with the extra flags.
//
// For investigations, -perf-dir records each mediagw process with
// `perf record -g`, -log-dir keeps every child's output and -mediagw-env
// passes extra environment (GODEBUG=gctrace=1, GOMEMLIMIT=...) to mediagw.
//
// Progress goes to stderr. Interrupting stops every child process. The exit
// status is 1 when any upload of the main scenarios failed or was not
// byte-exact (adversarial rows report errors as results).
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
)

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

func run(ctx context.Context, args []string) error {
	if isServe(args) {
		return serve(ctx, args)
	}
	cfg, err := parseConfig(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	var scs []scenario
	for _, sc := range cfg.scenarios {
		if cfg.filter.MatchString(sc.Name) {
			scs = append(scs, sc)
		}
	}
	var advs []string
	if cfg.adversarial {
		advs = cfg.advRuns()
	}
	if len(scs)+len(advs) == 0 {
		return errors.New("no scenario selected")
	}
	began := time.Now()
	rep := Report{Date: began.UTC().Format(time.RFC3339), GoVersion: goVersion(ctx), CPU: cpuModel(), Cores: runtime.NumCPU(),
		LoadBefore: loadAvg(), Quick: cfg.quick, X: cfg.x, Runs: cfg.runs, GRPCChunk: cfg.grpcChunk,
		Parallelism: cfg.parallelism, MaxInFlight: cfg.maxInFlight, Variants: cfg.variants, Notes: notes(cfg.x, cfg.sinkDigest)}

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
	if b.selfBin, err = os.Executable(); err != nil {
		return err
	}
	b.mgFlags = flagNames(ctx, b.mediagwBin)
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
	if len(advs) > 0 {
		rep.Adversarial = b.runAdversarial(ctx, advs)
		if ctx.Err() != nil {
			return errors.New("interrupted during the adversarial rows")
		}
	}
	rep.Targets = targets(rep.Rows, rep.Adversarial)
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

// flagNames returns the flags bin --help lists, or nil when it lists none
// (then every flag is assumed to exist).
func flagNames(ctx context.Context, bin string) map[string]bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+--?([A-Za-z0-9][A-Za-z0-9_.-]*)`).FindAllStringSubmatch(string(out), -1) {
		names[m[1]] = true
	}
	if len(names) == 0 {
		return nil
	}
	return names
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
