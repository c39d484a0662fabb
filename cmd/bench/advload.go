package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// MemoryResult is an adv/memory-* row.
type MemoryResult struct {
	Name      string `json:"name"`
	Uploads   int    `json:"uploads"`
	SizeBytes int64  `json:"size_bytes"`
	Chunk     int    `json:"chunk_bytes"`
	// Outcomes counts the callers' results: OK or a gRPC code.
	Outcomes map[string]int `json:"outcomes"`
	Verified int            `json:"verified_byte_exact"`
	// Corrupt counts uploads answered OK that X does not hold byte-exact.
	Corrupt      int      `json:"corrupt"`
	PeakRSSMiB   float64  `json:"peak_rss_mib"`
	CPUSecPerGiB float64  `json:"cpu_s_per_gib,omitempty"` // over the bytes of OK uploads
	Seconds      float64  `json:"seconds"`
	Samples      []string `json:"error_samples,omitempty"`
}

// memory sends memUploads concurrent gRPC uploads in chunk-sized messages,
// each on a connection of its own, through a fresh mediagw to the sink.
func (b *bench) memory(ctx context.Context, name string, v variant, chunk int) (MemoryResult, error) {
	a := b.cfg.adv
	res := MemoryResult{Name: name, Uploads: a.memUploads, SizeBytes: a.memSize, Chunk: chunk, Outcomes: map[string]int{}}
	x, err := b.startX(ctx, xSink, 0, "")
	if err != nil {
		return res, err
	}
	defer x.stop()
	mg, grpcAddr, _, err := b.startMediagw(ctx, x.url, a.memSize, v)
	if err != nil {
		return res, err
	}
	defer mg.stop()
	sampler := sampleRSS(mg.pid())
	uctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	ups := make([]upload, a.memUploads)
	t0, _ := cpuTicks(mg.pid())
	start := time.Now()
	var wg sync.WaitGroup
	for i := range ups {
		wg.Go(func() {
			c, err := newGRPCClient(grpcAddr, chunk)
			if err != nil {
				ups[i] = upload{err: err}
				return
			}
			defer c.conn.Close()
			ups[i] = c.upload(uctx, newGen(a.memSize))
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	t1, _ := cpuTicks(mg.pid())
	res.PeakRSSMiB = float64(sampler.finish()) / 1024
	var okBytes int64
	for _, u := range ups {
		res.Outcomes[outcome(u.err)]++
		if u.err != nil {
			if len(res.Samples) < 3 {
				res.Samples = append(res.Samples, trim(u.err.Error(), 200))
			}
			continue
		}
		okBytes += u.size
		if _, err := x.in.check(ctx, u); err != nil {
			res.Corrupt++
			if len(res.Samples) < 3 {
				res.Samples = append(res.Samples, trim(err.Error(), 200))
			}
			continue
		}
		res.Verified++
	}
	if okBytes > 0 {
		res.CPUSecPerGiB = float64(t1-t0) / clockTicks / (float64(okBytes) / (1 << 30))
	}
	return res, exited(mg, x.proc)
}

// FaultResult is the adv/faults row.
type FaultResult struct {
	Name    string      `json:"name"`
	Rate    float64     `json:"fault_rate"`
	Latency string      `json:"latency"`
	Paths   []FaultPath `json:"paths"` // grpc, rest and all
	// Injected counts the emulator's faults by kind.
	Injected map[string]int64 `json:"faults_injected"`
	Seconds  float64          `json:"seconds"`
}

// FaultPath is the figures of one path (or "all") under faults.
type FaultPath struct {
	Path     string         `json:"path"`
	Uploads  int            `json:"uploads"`
	P50      float64        `json:"p50_s"`
	P99      float64        `json:"p99_s"`
	Max      float64        `json:"max_s"`
	Outcomes map[string]int `json:"outcomes"`
	Verified int            `json:"verified_byte_exact"`
	Samples  []string       `json:"error_samples,omitempty"`
}

func (r FaultResult) faultText() string {
	m := map[string]int{}
	for k, n := range r.Injected {
		m[k] = int(n)
	}
	return counts(m)
}

// faults sends faultUploads uploads of 1–4 MiB, faultConc at a time,
// alternating gRPC and REST, through a fresh mediagw to the emulator
// injecting faults (503, 500, reset, stall) at faultRate with latency.
func (b *bench) faults(ctx context.Context, name string, v variant) (FaultResult, error) {
	a := b.cfg.adv
	res := FaultResult{Name: name, Rate: a.faultRate, Latency: a.faultLatency.String()}
	x, err := b.startX(ctx, xEmulator, a.faultLatency, "",
		"--fault-rate", fmt.Sprint(a.faultRate), "--fault-kinds", "503,500,reset,stall")
	if err != nil {
		return res, err
	}
	defer x.stop()
	mg, grpcAddr, httpAddr, err := b.startMediagw(ctx, x.url, 4<<20, v)
	if err != nil {
		return res, err
	}
	defer mg.stop()
	g, err := newGRPCClient(grpcAddr, b.cfg.grpcChunk)
	if err != nil {
		return res, err
	}
	defer g.conn.Close()
	clients := []uploader{g, &restClient{url: "http://" + httpAddr, path: "/v1/media:upload", hc: newHTTPClient()}}
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := make([]int64, a.faultUploads)
	for i := range sizes {
		sizes[i] = 1<<20 + rng.Int64N(3<<20+1)
	}
	ups := make([]upload, a.faultUploads)
	work := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range a.faultConc {
		wg.Go(func() {
			for i := range work {
				uctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
				ups[i] = clients[i%2].upload(uctx, newGen(sizes[i]))
				cancel()
			}
		})
	}
	for i := range ups {
		if ctx.Err() != nil {
			break
		}
		work <- i
		if (i+1)%100 == 0 {
			logf("  %d/%d uploads sent", i+1, len(ups))
		}
	}
	close(work)
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	all := FaultPath{Path: "all", Outcomes: map[string]int{}}
	grpcP := FaultPath{Path: modeGRPC, Outcomes: map[string]int{}}
	restP := FaultPath{Path: modeREST, Outcomes: map[string]int{}}
	paths := []*FaultPath{&grpcP, &restP, &all}
	times := make([][]float64, len(paths))
	for i, u := range ups {
		err := u.err
		if err == nil {
			_, err = x.in.check(ctx, u)
		}
		for _, k := range []int{i % 2, 2} {
			p := paths[k]
			p.Uploads++
			p.Outcomes[outcome(u.err)]++
			if err == nil {
				p.Verified++
			} else if len(p.Samples) < 3 {
				p.Samples = append(p.Samples, trim(err.Error(), 200))
			}
			times[k] = append(times[k], u.end.Sub(u.start).Seconds())
		}
	}
	for k, p := range paths {
		p.P50, p.P99, p.Max = percentile(times[k], 50), percentile(times[k], 99), percentile(times[k], 100)
		res.Paths = append(res.Paths, *p)
	}
	var st struct {
		Faults map[string]int64 `json:"faults"`
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, x.url+"/_xfake/stats", nil)
	if err := do(x.in.hc, req, &st); err != nil {
		logf("emulator stats: %v", err)
	}
	res.Injected = st.Faults
	return res, exited(mg, x.proc)
}

// exited reports the first of ps that is no longer running, with its
// last output: a row whose mediagw or X died measured nothing.
func exited(ps ...*proc) error {
	for _, p := range ps {
		if !p.alive() {
			return fmt.Errorf("%s exited during the row:\n%s", p.name, p.output())
		}
	}
	return nil
}
