package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/status"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// advConfig sets the sizes of the adversarial rows.
type advConfig struct {
	starveGRPC, starveREST int
	starveRate             int // bytes per second of each REST trickle
	starveTimeout          time.Duration
	memUploads             int
	memSize                int64
	faultUploads           int
	faultConc              int
	faultRate              float64
	faultLatency           time.Duration
}

func (a *advConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&a.starveGRPC, "starve-grpc", 64, "adv/starvation: gRPC streams that send a start message and 16 bytes, then hold")
	fs.IntVar(&a.starveREST, "starve-rest", 64, "adv/starvation: REST uploads that trickle their body")
	fs.IntVar(&a.starveRate, "starve-rate", 1500, "adv/starvation: bytes per second of each REST trickle")
	fs.DurationVar(&a.starveTimeout, "starve-timeout", 90*time.Second, "adv/starvation: longest wait for the legitimate upload among the slow callers")
	fs.IntVar(&a.memUploads, "memory-uploads", 200, "adv/memory-*: concurrent gRPC uploads")
	fs.Func("memory-size", "adv/memory-*: size of each upload (default 20MiB)", func(v string) error {
		n, err := xfake.ParseSize(v)
		a.memSize = n
		return err
	})
	fs.IntVar(&a.faultUploads, "fault-uploads", 1000, "adv/faults: uploads of 1-4 MiB through mediagw to the emulator with faults")
	fs.IntVar(&a.faultConc, "fault-concurrency", 8, "adv/faults: uploads at a time")
	fs.Float64Var(&a.faultRate, "fault-rate", 0.1, "adv/faults: emulator --fault-rate (kinds 503, 500, reset, stall)")
	fs.DurationVar(&a.faultLatency, "fault-latency", 20*time.Millisecond, "adv/faults: emulator --latency")
	a.memSize = 20 << 20
}

// quick shrinks the rows that take longest, unless their flags were given.
func (a *advConfig) quick(given map[string]bool) {
	if !given["memory-uploads"] {
		a.memUploads = 50
	}
	if !given["fault-uploads"] {
		a.faultUploads = 200
	}
	if !given["starve-timeout"] {
		a.starveTimeout = 30 * time.Second
	}
}

func (a *advConfig) validate() error {
	if a.starveGRPC < 0 || a.starveREST < 0 || a.starveRate < 1 || a.memUploads < 1 || a.memSize < 16 ||
		a.faultUploads < 1 || a.faultConc < 1 || a.faultRate < 0 || a.faultRate > 1 {
		return errors.New("adversarial flags: counts must be positive and -fault-rate within 0..1")
	}
	return nil
}

// The adversarial rows, by name (with "+variant" for a mediagw variant).
const (
	advStarvation = "adv/starvation"
	advMemoryBig  = "adv/memory-4MiB"
	advMemorySmal = "adv/memory-32KiB"
	advFaults     = "adv/faults"
)

// memChunks are the gRPC chunk sizes of the memory rows: the largest
// message mediagw accepts by default (4 MiB of data; the limit leaves
// room for framing), and the recommended 32 KiB less framing.
var memChunks = map[string]int{advMemoryBig: 4 << 20, advMemorySmal: 32752}

// Adversarial is what the adversarial rows measured. They measure
// behaviour, so errors are results here, not failures of the bench.
type Adversarial struct {
	Starvation []StarvationResult `json:"starvation,omitempty"`
	Memory     []MemoryResult     `json:"memory,omitempty"`
	Faults     []FaultResult      `json:"faults,omitempty"`
	Failures   []string           `json:"failures,omitempty"`
}

// advRuns lists the adversarial rows the filter selects.
func (c config) advRuns() []string {
	var out []string
	for _, v := range c.variants {
		for _, n := range []string{advStarvation, advMemoryBig, advMemorySmal, advFaults} {
			if name := n + v.suffix(); c.filter.MatchString(name) {
				out = append(out, name)
			}
		}
	}
	return out
}

// runAdversarial runs the named rows, each with fresh processes.
func (b *bench) runAdversarial(ctx context.Context, names []string) *Adversarial {
	adv := &Adversarial{}
	for _, name := range names {
		base, vname, _ := strings.Cut(name, "+")
		var v variant
		for _, cand := range b.cfg.variants {
			if cand.Name == vname {
				v = cand
			}
		}
		logf("adversarial %s", name)
		var err error
		switch base {
		case advStarvation:
			var r StarvationResult
			if r, err = b.starvation(ctx, name, v); err == nil {
				adv.Starvation = append(adv.Starvation, r)
			}
		case advMemoryBig, advMemorySmal:
			var r MemoryResult
			if r, err = b.memory(ctx, name, v, memChunks[base]); err == nil {
				adv.Memory = append(adv.Memory, r)
			}
		case advFaults:
			var r FaultResult
			if r, err = b.faults(ctx, name, v); err == nil {
				adv.Faults = append(adv.Faults, r)
			}
		}
		if ctx.Err() != nil {
			adv.Failures = append(adv.Failures, name+": interrupted")
			return adv
		}
		if err != nil {
			logf("adversarial %s failed: %v", name, err)
			adv.Failures = append(adv.Failures, fmt.Sprintf("%s: %s", name, trim(err.Error(), 500)))
		}
	}
	return adv
}

// outcome names how a call ended: OK, a gRPC code, "HTTP n", timeout or
// transport (a connection error without a status).
func outcome(err error) string {
	var he *httpError
	switch {
	case err == nil:
		return "OK"
	case errors.As(err, &he):
		return fmt.Sprintf("HTTP %d", he.status)
	}
	if st, ok := status.FromError(err); ok {
		return st.Code().String()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "transport"
}

// counts writes a map of outcomes as "OK 190, ResourceExhausted 10".
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "–"
	}
	keys := slices.Sorted(maps.Keys(m))
	slices.SortStableFunc(keys, func(a, b string) int { return m[b] - m[a] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}

// markdown renders the adversarial rows.
func (a *Adversarial) markdown() string {
	var b strings.Builder
	b.WriteString("\n### Adversarial rows\n")
	if len(a.Starvation) > 0 {
		b.WriteString("\nStarvation (X = sink): one legitimate 2 MiB upload per path, alone (median of 3), among the slow callers, and after the bench stopped them.\n\n")
		b.WriteString("| row | path | alone s | among slow callers | after | slow callers | how they ended | mediagw peak RSS MiB |\n|---|---|---|---|---|---|---|---|\n")
		for _, r := range a.Starvation {
			for _, l := range r.Legit {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d gRPC holders, %d REST trickles at %d B/s | %s | %.0f |\n",
					r.Name, l.Path, span(l.Alone, 2), l.Present.text(), l.After.text(), r.GRPCHolders, r.RESTTrickles, r.TrickleRate,
					r.endings(), r.PeakRSSMiB)
			}
		}
	}
	if len(a.Memory) > 0 {
		b.WriteString("\nMemory with large chunks (X = sink): concurrent gRPC uploads, each on its own connection. ResourceExhausted and other refusals are outcomes; corrupt = answered OK but not byte-exact at X.\n\n")
		b.WriteString("| row | uploads | chunk | outcomes | byte-exact | corrupt | mediagw peak RSS MiB | mediagw CPU s/GiB | seconds |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range a.Memory {
			fmt.Fprintf(&b, "| %s | %dx%s | %s | %s | %d | %d | %.0f | %s | %.1f |\n", r.Name, r.Uploads, sizeText(r.SizeBytes), sizeText(int64(r.Chunk)),
				counts(r.Outcomes), r.Verified, r.Corrupt, r.PeakRSSMiB, num(r.CPUSecPerGiB, 2), r.Seconds)
		}
	}
	if len(a.Faults) > 0 {
		b.WriteString("\nTail latency under faults (X = emulator): uploads of 1–4 MiB alternating gRPC and REST; times are per upload, failed ones included.\n\n")
		b.WriteString("| row | path | uploads | p50 s | p99 s | max s | outcomes | byte-exact | faults injected |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range a.Faults {
			for _, p := range r.Paths {
				injected := "(in all)"
				if p.Path == "all" {
					injected = r.faultText()
				}
				fmt.Fprintf(&b, "| %s | %s | %d | %.2f | %.2f | %.2f | %s | %d/%d | %s |\n", r.Name, p.Path, p.Uploads, p.P50, p.P99, p.Max,
					counts(p.Outcomes), p.Verified, p.Uploads, injected)
			}
		}
	}
	for _, f := range a.Failures {
		fmt.Fprintf(&b, "\n- failed: %s\n", f)
	}
	return b.String()
}

// targets are the adversarial rows' targets and figures.
func (a *Adversarial) targets() []Target {
	var out []Target
	for _, r := range a.Faults {
		for _, p := range r.Paths {
			if p.Path == "all" {
				out = append(out, Target{Name: fmt.Sprintf("%s: p99 upload time ≤ %.0f s under faults", r.Name, targetFaultP99Sec),
					Measured: fmt.Sprintf("p99 %.2f s, max %.2f s, %d/%d byte-exact", p.P99, p.Max, p.Verified, p.Uploads),
					Met:      met(p.P99 <= targetFaultP99Sec)})
			}
		}
	}
	for _, r := range a.Starvation {
		for _, l := range r.Legit {
			out = append(out, Target{Name: fmt.Sprintf("%s %s: a legitimate 2 MiB upload completes among slow callers", r.Name, l.Path),
				Measured: fmt.Sprintf("%s (alone %s s)", l.Present.text(), num(l.Alone.Median, 2)), Met: met(l.Present.Outcome == "OK")})
		}
	}
	for _, r := range a.Memory {
		out = append(out, Target{Name: fmt.Sprintf("%s: %d uploads, none corrupt (mediagw peak RSS shown)", r.Name, r.Uploads),
			Measured: fmt.Sprintf("%.0f MiB; %s; %d corrupt", r.PeakRSSMiB, counts(r.Outcomes), r.Corrupt), Met: met(r.Corrupt == 0)})
	}
	return out
}
