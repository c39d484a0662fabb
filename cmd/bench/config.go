package main

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// The X servers a run can measure against.
const (
	xSink     = "sink"     // the bench's minimal X (sink.go)
	xEmulator = "emulator" // cmd/xfake, the full emulator
)

// Default scenarios. Against the sink they are the project's targets: CPU
// per GiB on one large upload, the speed-up at 50 ms, the speed-up on a
// small upload without latency, and 100 concurrent uploads. Against the
// emulator they are the matrix the bench has always run.
var (
	sinkScenarios          = "lat0/1x480MiB,lat50ms/1x256MiB,lat0/1x64MiB,lat0/100x20MiB"
	sinkQuickScenarios     = "lat0/1x128MiB,lat50ms/1x64MiB,lat0/1x64MiB,lat0/10x20MiB"
	emulatorScenarios      = "lat0/1x64MiB,lat0/1x256MiB,lat0/1x512MiB,lat0/100x20MiB,lat50ms/1x64MiB,lat50ms/1x256MiB,lat50ms/1x512MiB,lat50ms/100x20MiB,bw40MB/1x64MiB"
	emulatorQuickScenarios = "lat0/1x16MiB,lat0/1x64MiB,lat0/10x20MiB,lat50ms/1x16MiB,lat50ms/1x64MiB,lat50ms/10x20MiB,bw40MB/1x16MiB"
)

// config is the parsed command line.
type config struct {
	quick       bool
	jsonOut     bool
	jsonFile    string
	runs        int
	modes       []string
	filter      *regexp.Regexp
	x           string
	sinkDigest  string
	scenarios   []scenario
	grpcChunk   int
	parallelism int
	maxInFlight int
	segmentSize string
	timeout     time.Duration
	warmup      bool
	spillDir    string
	perfDir     string
	mediagwEnv  []string
	variants    []variant
	adversarial bool
	adv         advConfig
}

// variant is a mediagw configuration: extra flags after the bench's own.
// The unnamed variant (no extra flags) always runs.
type variant struct {
	Name string   `json:"name"`
	Args []string `json:"args"`
}

// suffix is what the variant adds to a path's name: "" or "+name".
func (v variant) suffix() string {
	if v.Name == "" {
		return ""
	}
	return "+" + v.Name
}

func parseConfig(args []string) (config, error) {
	var c config
	var modes, run, scs, chunk, variants string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&c.quick, "quick", false, "quick mode (under two minutes): smaller scenarios and adversarial rows, unless -scenarios is given")
	fs.BoolVar(&c.jsonOut, "json", false, "print the report as JSON instead of markdown")
	fs.StringVar(&c.jsonFile, "json-file", "", "also write the report as JSON to this file")
	fs.IntVar(&c.runs, "runs", 5, "runs per scenario and path (the median is reported; -quick: 3)")
	fs.StringVar(&modes, "modes", "baseline,grpc,rest,relay,hop,grpc-hop", "upload paths to measure (relay: single uploads only; hop, grpc-hop: single uploads without latency; go-client: the gRPC path through service/client, not in the default)")
	fs.StringVar(&run, "run", "", "only scenarios whose name matches this regexp (e.g. 'lat0/', '1x480MiB', '^adv/')")
	fs.StringVar(&c.x, "x", xSink, "X server: sink (the minimal X) or emulator (cmd/xfake)")
	fs.StringVar(&c.sinkDigest, "sink-digest", digestXXH64, "digest the sink checks uploads with: xxh64 (cheap) or sha256 (about 1 CPU s/GiB more in the sink)")
	fs.StringVar(&scs, "scenarios", "", "comma-separated scenarios [latD/][bwRATE/]NxSIZE (bw: emulator only); default depends on -x and -quick")
	fs.StringVar(&chunk, "grpc-chunk", "32752", "gRPC chunk message size (32752 = 32 KiB minus framing, which fits gRPC's pooled buffers)")
	fs.IntVar(&c.parallelism, "parallelism", 4, "mediagw --parallelism (APPENDs in flight per upload)")
	fs.IntVar(&c.maxInFlight, "max-in-flight", 64, "mediagw --max-in-flight (APPENDs in flight in total)")
	fs.StringVar(&c.segmentSize, "segment-size", "", "mediagw --segment-size (empty: mediagw's default)")
	fs.StringVar(&variants, "variants", "", "extra mediagw configurations run next to the default: 'NAME=FLAGS;NAME2=FLAGS' (FLAGS split on spaces)")
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
	fs.BoolVar(&keyed, "keyed", false, "every grpc and rest upload carries a fresh idempotency key (recorded in mediagw's ledger; compare -variants with --ledger)")
	fs.BoolVar(&goClientSHA256, "go-client-sha256", false, "go-client: hash the bytes with SHA-256 as they are sent (service/client's default for a plain io.Reader)")
	fs.StringVar(&logDir, "log-dir", "", "keep the output of every child process in this directory")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "longest time one run of one path may take")
	fs.BoolVar(&c.adversarial, "adversarial", false, "also run the adversarial rows (adv/starvation, adv/memory-*, adv/faults)")
	c.adv.flags(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if c.x != xSink && c.x != xEmulator {
		return c, fmt.Errorf("-x: want sink or emulator, got %q", c.x)
	}
	if c.sinkDigest != digestXXH64 && c.sinkDigest != digestSHA256 {
		return c, fmt.Errorf("-sink-digest: want xxh64 or sha256, got %q", c.sinkDigest)
	}
	if scs == "" {
		scs = map[[2]bool]string{{false, false}: sinkScenarios, {false, true}: sinkQuickScenarios,
			{true, false}: emulatorScenarios, {true, true}: emulatorQuickScenarios}[[2]bool{c.x == xEmulator, c.quick}]
	}
	if c.quick {
		c.adv.quick(given)
		if !given["runs"] {
			c.runs = 3
		}
	}
	var err error
	for _, spec := range splitList(scs) {
		sc, err := parseScenario(spec)
		if err != nil {
			return c, fmt.Errorf("-scenarios: %w", err)
		}
		if sc.Bandwidth != "" && c.x != xEmulator {
			return c, fmt.Errorf("-scenarios: %s: bandwidth caps need -x emulator", spec)
		}
		c.scenarios = append(c.scenarios, sc)
	}
	c.modes = splitList(modes)
	for _, m := range c.modes {
		if !slices.Contains([]string{modeBaseline, modeGRPC, modeREST, modeRelay, modeHop, modeGRPCHop, modeGoClient}, m) {
			return c, fmt.Errorf("-modes: unknown path %q (want baseline, grpc, rest, relay, hop, grpc-hop, go-client)", m)
		}
	}
	if c.filter, err = regexp.Compile(run); err != nil {
		return c, fmt.Errorf("-run: %w", err)
	}
	n, err := xfake.ParseSize(chunk)
	if err != nil || n < 1 || n > 4<<20 {
		return c, fmt.Errorf("-grpc-chunk: want 1B..4MiB, got %q", chunk)
	}
	c.grpcChunk = int(n)
	if c.runs < 1 || c.parallelism < 1 || c.maxInFlight < 1 {
		return c, errors.New("-runs, -parallelism and -max-in-flight must be at least 1")
	}
	if c.variants, err = parseVariants(variants); err != nil {
		return c, fmt.Errorf("-variants: %w", err)
	}
	return c, c.adv.validate()
}

// parseScenario reads [latD/][bwRATE/]NxSIZE, e.g. lat50ms/1x256MiB.
func parseScenario(spec string) (scenario, error) {
	parts := strings.Split(spec, "/")
	sc := scenario{}
	var lat string
	for _, p := range parts[:len(parts)-1] {
		switch {
		case strings.HasPrefix(p, "lat"):
			d, err := time.ParseDuration(strings.TrimPrefix(p, "lat"))
			if err != nil || d < 0 {
				return sc, fmt.Errorf("%s: bad latency %q", spec, p)
			}
			sc.Latency, lat = d, p
		case strings.HasPrefix(p, "bw"):
			if _, err := xfake.ParseSize(strings.TrimPrefix(p, "bw")); err != nil {
				return sc, fmt.Errorf("%s: bad bandwidth %q", spec, p)
			}
			sc.Bandwidth = strings.TrimPrefix(p, "bw")
		default:
			return sc, fmt.Errorf("%s: want [latD/][bwRATE/]NxSIZE", spec)
		}
	}
	ns, ss, ok := strings.Cut(parts[len(parts)-1], "x")
	_, err := fmt.Sscan(ns, &sc.Concurrency)
	size, err2 := xfake.ParseSize(ss)
	if !ok || err != nil || err2 != nil || sc.Concurrency < 1 || size < 16 {
		return sc, fmt.Errorf("%s: want NxSIZE (e.g. 100x20MiB) at the end", spec)
	}
	sc.Size = size
	var name []string
	if lat != "" {
		name = append(name, latName(sc.Latency))
	}
	if sc.Bandwidth != "" {
		name = append(name, "bw"+sc.Bandwidth)
	}
	if len(name) == 0 {
		name = append(name, "lat0")
	}
	sc.Name = strings.Join(append(name, fmt.Sprintf("%dx%s", sc.Concurrency, sizeText(size))), "/")
	return sc, nil
}

func latName(d time.Duration) string {
	if d == 0 {
		return "lat0"
	}
	return "lat" + d.String()
}

// parseVariants reads 'NAME=FLAGS;NAME2=FLAGS'.
func parseVariants(s string) ([]variant, error) {
	out := []variant{{}}
	seen := map[string]bool{}
	for _, spec := range strings.Split(s, ";") {
		if strings.TrimSpace(spec) == "" {
			continue
		}
		name, args, ok := strings.Cut(spec, "=")
		name = strings.TrimSpace(name)
		if !ok || !regexp.MustCompile(`^[A-Za-z0-9_.-]+$`).MatchString(name) || seen[name] {
			return nil, fmt.Errorf("want NAME=FLAGS with a unique NAME of letters, digits, '_', '.', '-', got %q", spec)
		}
		seen[name] = true
		out = append(out, variant{Name: name, Args: strings.Fields(args)})
	}
	return out, nil
}

// flagInt returns the value of --name (or -name, or --name=V) in args
// when it is an integer, else def: the last one wins, as in mediagw.
func flagInt(args []string, name string, def int) int {
	v := def
	for i, a := range args {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		val, eq := "", false
		if k, after, ok := strings.Cut(a, "="); ok && k == name {
			val, eq = after, true
		}
		if !eq && a == name && i+1 < len(args) {
			val = args[i+1]
		}
		if n, err := strconv.Atoi(val); err == nil && (eq || a == name) {
			v = n
		}
	}
	return v
}

// paths returns the upload paths of sc: the selected modes that apply to
// it, with grpc and rest once per variant.
func (c config) paths(sc scenario) []pathSpec {
	var out []pathSpec
	for _, m := range c.modes {
		switch {
		case m == modeGRPC || m == modeREST || m == modeGoClient:
			for _, v := range c.variants {
				out = append(out, pathSpec{mode: m, variant: v})
			}
		case m == modeRelay && sc.Concurrency != 1, (m == modeHop || m == modeGRPCHop) && (sc.Concurrency != 1 || sc.Latency != 0 || sc.Bandwidth != ""):
		default:
			out = append(out, pathSpec{mode: m})
		}
	}
	return out
}

// pathSpec is one upload path of a scenario.
type pathSpec struct {
	mode    string
	variant variant
}

func (p pathSpec) name() string { return p.mode + p.variant.suffix() }

func (p pathSpec) mediagw() bool {
	return p.mode == modeGRPC || p.mode == modeREST || p.mode == modeGoClient
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
