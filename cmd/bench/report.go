package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Summary is the median, minimum and maximum of some samples.
type Summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// summarize returns the Summary of xs; the median of an even count is the
// mean of the two middle values. NaNs are ignored.
func summarize(xs []float64) Summary {
	s := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return Summary{}
	}
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Summary{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// idealRatio is the best speed-up over the sequential baseline that
// round trips allow when latency dominates. The baseline needs 2 + S round
// trips per upload (INIT, S APPENDs, FINALIZE). c uploads at once, each
// with at most p APPENDs in flight and at most m in flight in total, need
// at least 2 + ceil(c·S / min(c·p, m)) round trips; for c = 1 that is
// 2 + ceil(S / p).
func idealRatio(segments, p, c, m int) float64 {
	if segments < 1 || p < 1 || c < 1 || m < 1 {
		return 0
	}
	slots := min(c*p, m)
	rounds := (c*segments + slots - 1) / slots
	return float64(2+segments) / float64(2+rounds)
}

// segmentsOf returns how many segments of seg bytes size bytes make.
func segmentsOf(size, seg int64) int {
	if seg <= 0 {
		return 0
	}
	return int((size + seg - 1) / seg)
}

// Row is the result of one upload path in one scenario.
type Row struct {
	Scenario    string    `json:"scenario"`
	Mode        string    `json:"mode"`
	Latency     string    `json:"latency"`
	Bandwidth   string    `json:"bandwidth,omitempty"`
	SizeBytes   int64     `json:"size_bytes"`
	Concurrency int       `json:"concurrency"`
	MBps        Summary   `json:"mb_per_s"` // 10^6 bytes per second, all uploads of a run together
	RunsMBps    []float64 `json:"runs_mb_per_s"`
	// Ratio is MBps.Median over the baseline's in the same scenario.
	Ratio float64 `json:"ratio_to_baseline,omitempty"`
	// Ideal is idealRatio for this scenario (latency scenarios only) and
	// OfIdeal is Ratio / Ideal.
	Ideal   float64 `json:"ideal_ratio,omitempty"`
	OfIdeal float64 `json:"measured_over_ideal,omitempty"`
	// FirstAppendMS is, per upload, the time from the first byte sent to
	// the first APPEND at the emulator.
	FirstAppendMS Summary `json:"first_append_ms"`
	// FirstBeforeEnd counts uploads whose first APPEND reached the
	// emulator before the client had handed over its last byte.
	FirstBeforeEnd int `json:"first_append_before_last_byte"`
	Uploads        int `json:"uploads"`
	Verified       int `json:"verified_byte_exact"`
	Errors         int `json:"errors"`
	// PeakRSSMiB and CPUSecPerGiB are the mediagw process's (0 for the
	// baseline, which has no mediagw).
	PeakRSSMiB   float64 `json:"peak_rss_mib,omitempty"`
	CPUSecPerGiB float64 `json:"cpu_s_per_gib,omitempty"`
	// The CPU seconds per GiB of the emulator and of the bench process
	// (the client side) during the same runs.
	EmulatorCPUSecPerGiB float64  `json:"emulator_cpu_s_per_gib"`
	ClientCPUSecPerGiB   float64  `json:"client_cpu_s_per_gib"`
	ErrorSamples         []string `json:"error_samples,omitempty"`
}

// Report is everything one bench run measured.
type Report struct {
	Date        string   `json:"date"`
	GoVersion   string   `json:"go_version"`
	CPU         string   `json:"cpu"`
	Cores       int      `json:"cores"`
	LoadBefore  string   `json:"loadavg_before"`
	LoadAfter   string   `json:"loadavg_after"`
	Quick       bool     `json:"quick"`
	Runs        int      `json:"runs"`
	GRPCChunk   int      `json:"grpc_chunk_bytes"`
	Parallelism int      `json:"parallelism"`
	MaxInFlight int      `json:"max_in_flight"`
	Seconds     float64  `json:"seconds"`
	Notes       []string `json:"notes"`
	Rows        []Row    `json:"rows"`
	Failures    []string `json:"failures,omitempty"`
}

// fillRatios sets Ratio, Ideal and OfIdeal of the rows of one scenario
// from its baseline row. latency > 0 makes the round-trip ideal apply.
func fillRatios(rows []Row, latency time.Duration, p, m int) {
	var base float64
	for _, r := range rows {
		if r.Mode == modeBaseline {
			base = r.MBps.Median
		}
	}
	for i := range rows {
		r := &rows[i]
		if base > 0 && r.MBps.Median > 0 {
			r.Ratio = r.MBps.Median / base
		}
		if latency > 0 && r.Mode != modeBaseline {
			r.Ideal = idealRatio(segmentsOf(r.SizeBytes, baselineSegment), p, r.Concurrency, m)
			if r.Ideal > 0 && r.Ratio > 0 {
				r.OfIdeal = r.Ratio / r.Ideal
			}
		}
	}
}

// sizeText writes n bytes as "512MiB" when it is a whole number of MiB.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func num(x float64, prec int) string {
	if x == 0 || math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, x)
}

// markdown renders the report as a markdown document with one table.
func markdown(rep Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## mediagw benchmark, %s\n\n", rep.Date)
	fmt.Fprintf(&b, "- %s; CPU %s, %d cores; load average %s before, %s after\n", rep.GoVersion, rep.CPU, rep.Cores, rep.LoadBefore, rep.LoadAfter)
	mode := "full"
	if rep.Quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "- %s mode, %d run(s) per row, %.0f s in all; mediagw --parallelism %d --max-in-flight %d; gRPC chunks of %s\n",
		mode, rep.Runs, rep.Seconds, rep.Parallelism, rep.MaxInFlight, sizeText(int64(rep.GRPCChunk)))
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	b.WriteString("\n| scenario | path | MB/s median (min–max) | × baseline | ideal × | measured/ideal | 1st APPEND ms | 1st APPEND before last byte | peak RSS MiB | CPU s/GiB | emulator, client CPU s/GiB | errors | byte-exact |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Rows {
		mbps := fmt.Sprintf("%s (%s–%s)", num(r.MBps.Median, 1), num(r.MBps.Min, 1), num(r.MBps.Max, 1))
		if r.MBps.N == 0 {
			mbps = "–"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %d/%d | %s | %s | %s, %s | %d | %d/%d |\n",
			r.Scenario, r.Mode, mbps, num(r.Ratio, 2), num(r.Ideal, 2), num(r.OfIdeal, 2),
			num(r.FirstAppendMS.Median, 0), r.FirstBeforeEnd, r.Uploads,
			num(r.PeakRSSMiB, 0), num(r.CPUSecPerGiB, 2), num(r.EmulatorCPUSecPerGiB, 2), num(r.ClientCPUSecPerGiB, 2),
			r.Errors, r.Verified, r.Uploads)
	}
	var samples []string
	for _, r := range rep.Rows {
		for _, e := range r.ErrorSamples {
			samples = append(samples, fmt.Sprintf("%s %s: %s", r.Scenario, r.Mode, e))
		}
	}
	if len(samples)+len(rep.Failures) > 0 {
		b.WriteString("\nErrors:\n\n")
		for _, s := range append(rep.Failures, samples...) {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	return b.String()
}
