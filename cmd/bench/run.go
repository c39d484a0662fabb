package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// token is the bearer token X accepts and every client uses.
const token = "mediagw-bench-token"

// scenario is one X configuration and one workload.
type scenario struct {
	Name        string
	Latency     time.Duration
	Bandwidth   string // xfake --bandwidth value; "" for none
	Size        int64  // bytes per upload
	Concurrency int    // simultaneous uploads
}

// bench holds what every scenario shares.
type bench struct {
	cfg        config
	tmp        string
	spillRoot  string // where the emulator spills segments
	xfakeBin   string
	mediagwBin string
	selfBin    string          // this binary, re-executed with -serve
	mgFlags    map[string]bool // the flags mediagw --help lists; nil: unknown
	seq        int
}

// batch is what one run of one path in one scenario measured.
type batch struct {
	seconds   float64
	bytes     int64
	ticks     int64 // of the path's own process (mediagw, relay, discard server)
	xTicks    int64 // of X (sink or emulator)
	selfTicks int64 // of the bench process (the client side)
	uploads   int
	errors    int
	verified  int
	firstMS   []float64
	beforeEnd int
	errs      []string
}

// pathRun is one upload path of a running scenario: its client and the
// process serving it (nil for the baseline, which talks to X itself).
type pathRun struct {
	spec    pathSpec
	client  uploader
	proc    *proc
	sampler *rssSampler
	batches []batch
}

// xServer is a running X: the sink or the emulator.
type xServer struct {
	kind string
	proc *proc
	url  string
	in   *inspector
	stop func()
}

// startX starts a fresh X of kind with latency (and, for the emulator, a
// bandwidth cap and extra flags).
func (b *bench) startX(ctx context.Context, kind string, latency time.Duration, bandwidth string, extra ...string) (*xServer, error) {
	x := &xServer{kind: kind}
	var err error
	if kind == xSink {
		args := []string{"-serve", roleSink, "-addr", "127.0.0.1:0", "-token", token, "-latency", latency.String(), "-digest", b.cfg.sinkDigest}
		if x.proc, x.url, err = startProc(ctx, "sink", b.selfBin, args, nil, serveReady(roleSink)); err != nil {
			return nil, err
		}
		x.in = &inspector{url: x.url, prefix: "/_sink/media/", hc: newHTTPClient()}
		x.stop = x.proc.stop
		return x, nil
	}
	b.seq++
	spill := filepath.Join(b.spillRoot, fmt.Sprintf("mediagw-bench-spill-%d-%d", os.Getpid(), b.seq))
	if err := os.MkdirAll(spill, 0o755); err != nil {
		return nil, err
	}
	args := []string{"--addr", "127.0.0.1:0", "--token", token, "--latency", latency.String(),
		"--rate-limit", "off", "--processing-time", "1s", "--seed", "1", "--spill-dir", spill, "--log-level", "warn"}
	if bandwidth != "" {
		args = append(args, "--bandwidth", bandwidth)
	}
	if x.proc, x.url, err = startProc(ctx, "xfake", b.xfakeBin, append(args, extra...), nil, xfakeReady); err != nil {
		os.RemoveAll(spill)
		return nil, err
	}
	x.in = &inspector{url: x.url, prefix: "/_xfake/media/", hc: newHTTPClient()}
	x.stop = func() { x.proc.stop(); os.RemoveAll(spill) }
	return x, nil
}

// startPath starts the process of one upload path in front of x and
// returns the path with its client.
func (b *bench) startPath(ctx context.Context, spec pathSpec, x *xServer, size int64) (*pathRun, error) {
	p := &pathRun{spec: spec}
	var err error
	switch spec.mode {
	case modeBaseline:
		p.client = &baseline{url: x.url, token: token, hc: newHTTPClient()}
		return p, nil
	case modeRelay:
		var url string
		args := []string{"-serve", roleRelay, "-addr", "127.0.0.1:0", "-token", token, "-x-url", x.url}
		if p.proc, url, err = startProc(ctx, "relay", b.selfBin, args, nil, serveReady(roleRelay)); err != nil {
			return nil, err
		}
		p.client = &restClient{url: url, path: "/upload", hc: newHTTPClient()}
	case modeHop:
		var url string
		if p.proc, url, err = startProc(ctx, "discard", b.selfBin, []string{"-serve", roleDiscard, "-addr", "127.0.0.1:0"}, nil, serveReady(roleDiscard)); err != nil {
			return nil, err
		}
		p.client = &hopClient{url: url, hc: newHTTPClient()}
	case modeGRPCHop:
		var addr string
		if p.proc, addr, err = startProc(ctx, "grpcdiscard", b.selfBin, []string{"-serve", roleGRPCDiscard, "-addr", "127.0.0.1:0"}, nil, serveReady(roleGRPCDiscard)); err != nil {
			return nil, err
		}
		c, err := newGRPCClient(addr, b.cfg.grpcChunk)
		if err != nil {
			p.proc.stop()
			return nil, err
		}
		p.client = &grpcHopClient{c: c}
	default:
		var grpcAddr, httpAddr string
		if p.proc, grpcAddr, httpAddr, err = b.startMediagw(ctx, x.url, size, spec.variant); err != nil {
			return nil, err
		}
		switch spec.mode {
		case modeGRPC:
			if p.client, err = newGRPCClient(grpcAddr, b.cfg.grpcChunk); err != nil {
				p.proc.stop()
				return nil, err
			}
		case modeGoClient:
			if p.client, err = newGoClient(grpcAddr, b.cfg.grpcChunk); err != nil {
				p.proc.stop()
				return nil, err
			}
		default:
			p.client = &restClient{url: "http://" + httpAddr, path: "/v1/media:upload", hc: newHTTPClient()}
		}
		setKeyed(p.client, spec.variant.Args)
	}
	p.sampler = sampleRSS(p.proc.pid())
	return p, nil
}

func (p *pathRun) close() {
	switch c := p.client.(type) {
	case *grpcClient:
		_ = c.conn.Close()
	case *goClient:
		_ = c.c.Close()
	}
	if p.proc != nil {
		p.proc.stop()
	}
}

// startMediagw starts a mediagw in front of the X at xurl, accepting
// uploads of size bytes, with the variant's extra flags.
func (b *bench) startMediagw(ctx context.Context, xurl string, size int64, v variant, extra ...string) (p *proc, grpcAddr, httpAddr string, err error) {
	args := []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--x-api-url", xurl, "--x-token", token}
	// Flags the bench can do without are passed only when this mediagw
	// has them, so the bench keeps working while mediagw's flags change.
	optional := [][2]string{
		{"max-video-bytes", strconv.FormatInt(max(600<<20, size+1<<20), 10)},
		{"drain-timeout", "2s"},
		{"log-level", "info"},
		{"parallelism", strconv.Itoa(b.cfg.parallelism)},
		{"max-in-flight", strconv.Itoa(b.cfg.maxInFlight)},
		// Off the default admin port, which a running mediagw may hold.
		{"admin-addr", "127.0.0.1:0"},
	}
	if b.cfg.segmentSize != "" {
		optional = append(optional, [2]string{"segment-size", b.cfg.segmentSize})
	}
	// Every mediagw gets a ledger file of its own (a ledger belongs to one
	// process); a variant's --ledger, given later, wins.
	b.seq++
	optional = append(optional, [2]string{"ledger", filepath.Join(b.tmp, fmt.Sprintf("ledger-%d.db", b.seq))})
	for _, f := range optional {
		if b.mgFlags == nil || b.mgFlags[f[0]] {
			args = append(args, "--"+f[0], f[1])
		}
	}
	args = append(append(args, extra...), v.Args...)
	name := "mediagw" + v.suffix()
	p, addrs, err := startProc(ctx, name, b.mediagwBin, args, b.cfg.mediagwEnv, mediagwReady)
	if err != nil {
		return nil, "", "", err
	}
	grpcAddr, httpAddr, _ = strings.Cut(addrs, " ")
	return p, grpcAddr, httpAddr, nil
}

// runScenario starts a fresh X and one fresh process per path, runs every
// path cfg.runs times (interleaved), verifies every upload and returns one
// row per path.
func (b *bench) runScenario(ctx context.Context, sc scenario) (rows []Row, err error) {
	x, err := b.startX(ctx, b.cfg.x, sc.Latency, sc.Bandwidth)
	if err != nil {
		return nil, err
	}
	defer x.stop()
	var paths []*pathRun
	defer func() {
		for _, p := range paths {
			p.close()
		}
	}()
	for _, spec := range b.cfg.paths(sc) {
		p, err := b.startPath(ctx, spec, x, sc.Size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec.name(), err)
		}
		paths = append(paths, p)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no path of -modes applies")
	}
	if b.cfg.warmup {
		// One untimed upload per path: connections, buffer pools and
		// page faults of a fresh process are not what is measured.
		warm := scenario{Name: sc.Name, Size: min(sc.Size, 16<<20), Concurrency: 1}
		for _, p := range paths {
			if bt := b.runBatch(ctx, warm, p, x); bt.errors > 0 {
				return nil, fmt.Errorf("warm-up upload on %s failed: %s", p.spec.name(), strings.Join(bt.errs, "; "))
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	var recs []*perfRecorder
	for _, p := range paths {
		if p.spec.mediagw() {
			recs = append(recs, startPerf(b.cfg.perfDir, perfName(sc, p.spec.name()), p.proc.pid()))
		}
	}
	defer func() {
		for _, r := range recs {
			r.stop()
		}
	}()
	for run := range b.cfg.runs {
		for i := range paths {
			p := paths[(i+run)%len(paths)]
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if p.proc != nil && !p.proc.alive() {
				return nil, fmt.Errorf("%s for %s exited:\n%s", p.proc.name, p.spec.name(), p.proc.output())
			}
			bt := b.runBatch(ctx, sc, p, x)
			logf("  %-12s run %d: %7.1f MB/s, %d/%d byte-exact, %d errors", p.spec.name(), run+1,
				float64(bt.bytes)/1e6/bt.seconds, bt.verified, bt.uploads, bt.errors)
			p.batches = append(p.batches, bt)
		}
	}
	for _, p := range paths {
		row := p.row(sc, b.cfg.x)
		switch {
		case p.spec.mediagw():
			row.Parallelism = flagInt(p.spec.variant.Args, "parallelism", b.cfg.parallelism)
			row.MaxInFlight = flagInt(p.spec.variant.Args, "max-in-flight", b.cfg.maxInFlight)
		case p.spec.mode == modeRelay:
			row.Parallelism, row.MaxInFlight = relayParallel, relayParallel*sc.Concurrency
		}
		rows = append(rows, row)
	}
	fillRatios(rows, sc.Latency)
	return rows, nil
}

// row summarizes the batches of one path.
func (p *pathRun) row(sc scenario, x string) Row {
	row := Row{Scenario: sc.Name, Path: p.spec.name(), Mode: p.spec.mode, Variant: p.spec.variant.Name, X: x,
		Latency: sc.Latency.String(), Bandwidth: sc.Bandwidth, SizeBytes: sc.Size, Concurrency: sc.Concurrency}
	var first, cpu, xcpu, ccpu []float64
	for _, bt := range p.batches {
		mbps := float64(bt.bytes) / 1e6 / bt.seconds
		if bt.errors > 0 {
			mbps = 0 // a run with failures has no valid throughput
		}
		row.RunsMBps = append(row.RunsMBps, mbps)
		row.Uploads += bt.uploads
		row.Verified += bt.verified
		row.Errors += bt.errors
		row.FirstBeforeEnd += bt.beforeEnd
		first = append(first, bt.firstMS...)
		for _, e := range bt.errs {
			if len(row.ErrorSamples) < 3 {
				row.ErrorSamples = append(row.ErrorSamples, e)
			}
		}
		if bt.bytes == 0 || bt.errors > 0 {
			continue
		}
		gib := float64(bt.bytes) / (1 << 30)
		if p.proc != nil {
			cpu = append(cpu, float64(bt.ticks)/clockTicks/gib)
		}
		if p.spec.mode != modeHop && p.spec.mode != modeGRPCHop { // the hops do not reach X
			xcpu = append(xcpu, float64(bt.xTicks)/clockTicks/gib)
		}
		ccpu = append(ccpu, float64(bt.selfTicks)/clockTicks/gib)
	}
	var ok []float64
	for _, x := range row.RunsMBps {
		if x > 0 {
			ok = append(ok, x)
		}
	}
	row.MBps = summarize(ok)
	row.FirstAppendMS = summarize(first)
	row.CPUSecPerGiB, row.XCPUSecPerGiB, row.ClientCPUSecPerGiB = summarize(cpu), summarize(xcpu), summarize(ccpu)
	if p.sampler != nil {
		row.PeakRSSMiB = float64(p.sampler.finish()) / 1024
	}
	return row
}

// runBatch runs sc.Concurrency simultaneous uploads on p and verifies each
// of them once all are done (verification is not timed).
func (b *bench) runBatch(parent context.Context, sc scenario, p *pathRun, x *xServer) batch {
	ctx, cancel := context.WithTimeout(parent, b.cfg.timeout)
	defer cancel()
	var t0 int64
	if p.proc != nil {
		t0, _ = cpuTicks(p.proc.pid())
	}
	x0, _ := cpuTicks(x.proc.pid())
	s0, _ := cpuTicks(os.Getpid())
	ups := make([]upload, sc.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ups {
		wg.Go(func() { ups[i] = p.client.upload(ctx, newGen(sc.Size)) })
	}
	wg.Wait()
	bt := batch{seconds: time.Since(start).Seconds(), uploads: len(ups)}
	if p.proc != nil {
		t1, _ := cpuTicks(p.proc.pid())
		bt.ticks = t1 - t0
	}
	x1, _ := cpuTicks(x.proc.pid())
	s1, _ := cpuTicks(os.Getpid())
	bt.xTicks, bt.selfTicks = x1-x0, s1-s0
	vctx, vcancel := context.WithTimeout(parent, time.Minute)
	defer vcancel()
	for _, u := range ups {
		bt.bytes += u.size
		err := u.err
		var first time.Time
		if err == nil && !u.selfChecked {
			first, err = x.in.check(vctx, u)
		}
		if !first.IsZero() {
			bt.firstMS = append(bt.firstMS, float64(first.Sub(u.start))/float64(time.Millisecond))
			if !u.lastByte.IsZero() && first.Before(u.lastByte) {
				bt.beforeEnd++
			}
		}
		if err != nil {
			bt.errors++
			if len(bt.errs) < 3 {
				bt.errs = append(bt.errs, trim(err.Error(), 300))
			}
			continue
		}
		bt.verified++
	}
	return bt
}

// trim shortens s to about n bytes on one line, keeping its start and its
// end (where a wrapped error names the cause).
func trim(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	head := n * 2 / 5
	tail := n - head
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	start := len(s) - tail
	for start < len(s) && !utf8.RuneStart(s[start]) {
		start++
	}
	return s[:head] + " … " + s[start:]
}
