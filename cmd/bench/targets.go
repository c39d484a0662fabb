package main

import (
	"fmt"
	"strings"
	"time"
)

// Target is one of the project's performance targets and what this run
// measured for it. Met is nil for figures shown without a threshold.
type Target struct {
	Name     string `json:"name"`
	Measured string `json:"measured"`
	Met      *bool  `json:"met,omitempty"`
}

func (t Target) verdict() string {
	switch {
	case t.Met == nil:
		return "–"
	case *t.Met:
		return "yes"
	}
	return "**no**"
}

// The thresholds.
const (
	targetCPU         = 1.2 // mediagw CPU s/GiB, REST and gRPC
	targetRelayRatio  = 1.0 // goal: mediagw CPU over the bare relay's
	targetLatRatio    = 3.3 // × baseline at 50 ms, 256 MiB, P=4, REST
	targetLatSize     = 256 << 20
	targetSmallRatio  = 1.5 // × baseline at 0 latency, 64 MiB
	targetConcRSS     = 512 // MiB, 100 concurrent 20 MiB uploads
	targetSingleRSS   = 64  // MiB, one upload
	targetFaultP99Sec = 5.0 // p99 upload time under faults
)

func met(ok bool) *bool { return &ok }

// targets evaluates the targets on the rows of the default mediagw
// configuration (variants are compared in the table, not here).
func targets(rows []Row, adv *Adversarial) []Target {
	var out []Target
	pick := func(ok func(Row) bool) (best *Row) {
		for i := range rows {
			r := &rows[i]
			if r.Variant == "" && ok(*r) && (best == nil || r.SizeBytes > best.SizeBytes) {
				best = r
			}
		}
		return best
	}
	for _, mode := range []string{modeREST, modeGRPC} {
		r := pick(func(r Row) bool {
			return r.Mode == mode && r.Latency == "0s" && r.Concurrency == 1 && r.Bandwidth == ""
		})
		if r == nil || r.CPUSecPerGiB.N == 0 {
			continue
		}
		out = append(out, Target{Name: fmt.Sprintf("mediagw %s CPU ≤ %.1f s/GiB (%s)", mode, targetCPU, r.Scenario),
			Measured: span(r.CPUSecPerGiB, 2) + " s/GiB", Met: met(r.CPUSecPerGiB.Median <= targetCPU)})
		if r.RelayCPURatio > 0 {
			out = append(out, Target{Name: fmt.Sprintf("mediagw %s CPU ≤ %.1f× the bare relay's (goal; %s)", mode, targetRelayRatio, r.Scenario),
				Measured: fmt.Sprintf("%.2f×", r.RelayCPURatio), Met: met(r.RelayCPURatio <= targetRelayRatio)})
		}
	}
	if r := pick(func(r Row) bool { return r.Latency == "0s" && r.Concurrency == 1 && r.Bandwidth == "" }); r != nil {
		if line := cpuLine(rows, r.Scenario); line != "" {
			out = append(out, Target{Name: "CPU s/GiB per process (" + r.Scenario + ")", Measured: line})
		}
	}
	for _, mode := range []string{modeREST, modeGRPC} {
		r := pick(func(r Row) bool {
			return r.Mode == mode && r.Latency == (50*time.Millisecond).String() && r.Concurrency == 1
		})
		if r == nil {
			continue
		}
		// The target is set for 256 MiB (ideal 3.67×); other sizes are
		// held to the same share of their ideal.
		want, of := targetLatRatio, ""
		if r.SizeBytes != targetLatSize {
			want, of = targetLatRatio/idealRatio(segmentsOf(targetLatSize, baselineSegment), 4, 1, 64)*r.Ideal, " (0.9 of ideal)"
		}
		out = append(out, Target{Name: fmt.Sprintf("%s ≥ %.2f×%s baseline at 50 ms (%s; ideal %.2f×)", mode, want, of, r.Scenario, r.Ideal),
			Measured: fmt.Sprintf("%.2f×", r.Ratio) + relayRatio(rows, r.Scenario), Met: met(r.Ratio >= want)})
	}
	for _, mode := range []string{modeREST, modeGRPC} {
		r := pick(func(r Row) bool {
			return r.Mode == mode && r.Latency == "0s" && r.Concurrency == 1 && r.SizeBytes == 64<<20 && r.Bandwidth == ""
		})
		if r == nil {
			continue
		}
		out = append(out, Target{Name: fmt.Sprintf("%s ≥ %.1f× baseline without latency (%s)", mode, targetSmallRatio, r.Scenario),
			Measured: fmt.Sprintf("%.2f×", r.Ratio) + relayRatio(rows, r.Scenario), Met: met(r.Ratio >= targetSmallRatio)})
	}
	var single *Row
	allFirst, seen := true, false
	for i := range rows {
		r := &rows[i]
		if r.Variant != "" || (r.Mode != modeREST && r.Mode != modeGRPC) {
			continue
		}
		seen = true
		allFirst = allFirst && r.FirstBeforeEnd == r.Uploads
		if r.Concurrency == 1 && (single == nil || r.PeakRSSMiB > single.PeakRSSMiB) {
			single = r
		}
		if r.Concurrency >= 10 {
			out = append(out, Target{Name: fmt.Sprintf("%s %s: 0 errors, all byte-exact, peak RSS ≤ %d MiB", r.Path, r.Scenario, targetConcRSS),
				Measured: fmt.Sprintf("%d errors, %d/%d byte-exact, %.0f MiB", r.Errors, r.Verified, r.Uploads, r.PeakRSSMiB),
				Met:      met(r.Errors == 0 && r.Verified == r.Uploads && r.PeakRSSMiB <= targetConcRSS)})
		}
	}
	if single != nil {
		out = append(out, Target{Name: fmt.Sprintf("one upload: mediagw peak RSS ≤ %d MiB (largest over single-upload rows)", targetSingleRSS),
			Measured: fmt.Sprintf("%.0f MiB (%s %s)", single.PeakRSSMiB, single.Scenario, single.Path), Met: met(single.PeakRSSMiB <= targetSingleRSS)})
	}
	if seen {
		out = append(out, Target{Name: "first APPEND reaches X before the caller has sent its last byte (every mediagw upload)",
			Measured: map[bool]string{true: "every upload", false: "not every upload (see the table)"}[allFirst], Met: met(allFirst)})
	}
	if adv != nil {
		out = append(out, adv.targets()...)
	}
	return out
}

// cpuLine lists the CPU medians of one scenario's processes: mediagw per
// path, the relay, X receiving the baseline, and both ends of the hop.
func cpuLine(rows []Row, scenario string) string {
	var parts []string
	for _, r := range rows {
		if r.Scenario != scenario {
			continue
		}
		switch r.Mode {
		case modeBaseline:
			if r.XCPUSecPerGiB.N > 0 {
				parts = append(parts, fmt.Sprintf("%s receiving the baseline %.2f", r.X, r.XCPUSecPerGiB.Median))
			}
		case modeHop:
			if r.CPUSecPerGiB.N > 0 {
				parts = append(parts, fmt.Sprintf("hop %.2f server + %.2f client", r.CPUSecPerGiB.Median, r.ClientCPUSecPerGiB.Median))
			}
		case modeGRPCHop:
			if r.CPUSecPerGiB.N > 0 {
				parts = append(parts, fmt.Sprintf("gRPC hop (grpc-go receiving) %.2f server + %.2f client", r.CPUSecPerGiB.Median, r.ClientCPUSecPerGiB.Median))
			}
		default:
			if r.CPUSecPerGiB.N > 0 {
				parts = append(parts, fmt.Sprintf("%s %.2f", r.Path, r.CPUSecPerGiB.Median))
			}
		}
	}
	return strings.Join(parts, "; ")
}

// relayRatio is " (bare relay N×)" for a scenario with a relay row: what
// the same pipelining reaches without mediagw's costs.
func relayRatio(rows []Row, scenario string) string {
	for _, r := range rows {
		if r.Scenario == scenario && r.Mode == modeRelay && r.Ratio > 0 {
			return fmt.Sprintf(" (bare relay %.2f×)", r.Ratio)
		}
	}
	return ""
}
