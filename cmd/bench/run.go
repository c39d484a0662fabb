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
)

// token is the bearer token the emulator accepts and every client uses.
const token = "mediagw-bench-token"

// scenario is one emulator configuration and one workload.
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
	seq        int
}

// batch is what one run of one path in one scenario measured.
type batch struct {
	seconds   float64
	bytes     int64
	cpuTicks  int64 // mediagw's
	emuTicks  int64 // the emulator's
	selfTicks int64 // the bench process's (the client side)
	uploads   int
	errors    int
	verified  int
	firstMS   []float64
	beforeEnd int
	errs      []string
}

// pathRun is one upload path of a running scenario: its client and, for
// mediagw paths, the mediagw process serving it.
type pathRun struct {
	mode    string
	client  uploader
	proc    *proc
	sampler *rssSampler
	batches []batch
}

// runScenario starts a fresh emulator and one fresh mediagw per mediagw
// path, runs every path cfg.runs times (interleaved), verifies every upload
// and returns one row per path.
func (b *bench) runScenario(ctx context.Context, sc scenario) (rows []Row, err error) {
	b.seq++
	spill := filepath.Join(b.spillRoot, fmt.Sprintf("mediagw-bench-spill-%d-%d", os.Getpid(), b.seq))
	if err := os.MkdirAll(spill, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(spill)
	xargs := []string{"--addr", "127.0.0.1:0", "--token", token, "--latency", sc.Latency.String(),
		"--rate-limit", "off", "--processing-time", "1s", "--seed", "1", "--spill-dir", spill,
		"--log-level", "warn"}
	if sc.Bandwidth != "" {
		xargs = append(xargs, "--bandwidth", sc.Bandwidth)
	}
	emu, xurl, err := startProc(ctx, "xfake", b.xfakeBin, xargs, nil, xfakeReady)
	if err != nil {
		return nil, err
	}
	defer emu.stop()
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	in := &inspector{url: xurl, hc: hc}

	var paths []*pathRun
	defer func() {
		for _, p := range paths {
			if g, ok := p.client.(*grpcClient); ok {
				_ = g.conn.Close()
			}
			if p.proc != nil {
				p.proc.stop()
			}
		}
	}()
	for _, mode := range b.cfg.modes {
		p := &pathRun{mode: mode}
		paths = append(paths, p)
		if mode == modeBaseline {
			p.client = &baseline{url: xurl, token: token, hc: hc}
			continue
		}
		var addrs string
		p.proc, addrs, err = startProc(ctx, "mediagw", b.mediagwBin, b.mediagwArgs(xurl, sc.Size), b.cfg.mediagwEnv, mediagwReady)
		if err != nil {
			return nil, err
		}
		grpcAddr, httpAddr, _ := strings.Cut(addrs, " ")
		if mode == modeGRPC {
			if p.client, err = newGRPCClient(grpcAddr, b.cfg.grpcChunk); err != nil {
				return nil, err
			}
		} else {
			p.client = &restClient{url: "http://" + httpAddr, hc: newHTTPClient()}
		}
		p.sampler = sampleRSS(p.proc.pid())
	}

	if b.cfg.warmup {
		// One untimed upload per path: connections, buffer pools and
		// page faults of a fresh process are not what is measured.
		warm := scenario{Name: sc.Name, Size: min(sc.Size, 16<<20), Concurrency: 1}
		for _, p := range paths {
			if bt := b.runBatch(ctx, warm, p, in, emu.pid()); bt.errors > 0 {
				return nil, fmt.Errorf("warm-up upload on %s failed: %s", p.mode, strings.Join(bt.errs, "; "))
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	var recs []*perfRecorder
	for _, p := range paths {
		if p.proc != nil {
			recs = append(recs, startPerf(b.cfg.perfDir, perfName(sc, p.mode), p.proc.pid()))
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
				return nil, fmt.Errorf("mediagw for %s exited:\n%s", p.mode, p.proc.output())
			}
			bt := b.runBatch(ctx, sc, p, in, emu.pid())
			logf("  %-8s run %d: %7.1f MB/s, %d/%d byte-exact, %d errors", p.mode, run+1,
				float64(bt.bytes)/1e6/bt.seconds, bt.verified, bt.uploads, bt.errors)
			p.batches = append(p.batches, bt)
		}
	}

	for _, p := range paths {
		row := Row{Scenario: sc.Name, Mode: p.mode, Latency: sc.Latency.String(), Bandwidth: sc.Bandwidth,
			SizeBytes: sc.Size, Concurrency: sc.Concurrency}
		var first []float64
		var bytes, ticks, emuTicks, selfTicks int64
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
			bytes += bt.bytes
			ticks += bt.cpuTicks
			emuTicks += bt.emuTicks
			selfTicks += bt.selfTicks
			for _, e := range bt.errs {
				if len(row.ErrorSamples) < 3 {
					row.ErrorSamples = append(row.ErrorSamples, e)
				}
			}
		}
		var ok []float64
		for _, x := range row.RunsMBps {
			if x > 0 {
				ok = append(ok, x)
			}
		}
		row.MBps = summarize(ok)
		row.FirstAppendMS = summarize(first)
		if bytes > 0 {
			gib := float64(bytes) / (1 << 30)
			row.EmulatorCPUSecPerGiB = float64(emuTicks) / clockTicks / gib
			row.ClientCPUSecPerGiB = float64(selfTicks) / clockTicks / gib
		}
		if p.proc != nil {
			row.PeakRSSMiB = float64(p.sampler.finish()) / 1024
			if bytes > 0 {
				row.CPUSecPerGiB = float64(ticks) / clockTicks / (float64(bytes) / (1 << 30))
			}
		}
		rows = append(rows, row)
	}
	fillRatios(rows, sc.Latency, b.cfg.parallelism, b.cfg.maxInFlight)
	return rows, nil
}

// mediagwArgs returns the command line of a mediagw in front of the
// emulator at xurl, accepting uploads of size bytes.
func (b *bench) mediagwArgs(xurl string, size int64) []string {
	args := []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--x-api-url", xurl,
		"--x-token", token, "--max-video-bytes", strconv.FormatInt(max(600<<20, size+1<<20), 10),
		"--drain-timeout", "2s", "--log-level", "info",
		"--parallelism", strconv.Itoa(b.cfg.parallelism), "--max-in-flight", strconv.Itoa(b.cfg.maxInFlight)}
	if b.cfg.segmentSize != "" {
		args = append(args, "--segment-size", b.cfg.segmentSize)
	}
	return args
}

// runBatch runs sc.Concurrency simultaneous uploads on p and verifies each
// of them once all are done (verification is not timed).
func (b *bench) runBatch(parent context.Context, sc scenario, p *pathRun, in *inspector, emuPid int) batch {
	ctx, cancel := context.WithTimeout(parent, b.cfg.timeout)
	defer cancel()
	var t0 int64
	if p.proc != nil {
		t0, _ = cpuTicks(p.proc.pid())
	}
	e0, _ := cpuTicks(emuPid)
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
		bt.cpuTicks = t1 - t0
	}
	e1, _ := cpuTicks(emuPid)
	s1, _ := cpuTicks(os.Getpid())
	bt.emuTicks, bt.selfTicks = e1-e0, s1-s0
	vctx, vcancel := context.WithTimeout(parent, time.Minute)
	defer vcancel()
	for _, u := range ups {
		bt.bytes += u.size
		err := u.err
		var first time.Time
		if err == nil {
			first, err = in.check(vctx, u)
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

func trim(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
