package main

import (
	"fmt"
	"math"
	"slices"
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
	Scenario string `json:"scenario"`
	// Path is Mode plus "+variant" for a mediagw variant.
	Path        string `json:"path"`
	Mode        string `json:"mode"`
	Variant     string `json:"variant,omitempty"`
	X           string `json:"x"` // sink or emulator
	Latency     string `json:"latency"`
	Bandwidth   string `json:"bandwidth,omitempty"`
	SizeBytes   int64  `json:"size_bytes"`
	Concurrency int    `json:"concurrency"`
	// Parallelism and MaxInFlight are the path's APPEND limits per upload
	// and in total (mediagw's flags, the relay's constant), for Ideal.
	Parallelism int       `json:"parallelism,omitempty"`
	MaxInFlight int       `json:"max_in_flight,omitempty"`
	MBps        Summary   `json:"mb_per_s"` // 10^6 bytes per second, all uploads of a run together
	RunsMBps    []float64 `json:"runs_mb_per_s"`
	// Ratio is MBps.Median over the baseline's in the same scenario.
	Ratio float64 `json:"ratio_to_baseline,omitempty"`
	// Ideal is idealRatio for this scenario (latency scenarios only) and
	// OfIdeal is Ratio / Ideal.
	Ideal   float64 `json:"ideal_ratio,omitempty"`
	OfIdeal float64 `json:"measured_over_ideal,omitempty"`
	// FirstAppendMS is, per upload, the time from the first byte sent to
	// the first APPEND at X.
	FirstAppendMS Summary `json:"first_append_ms"`
	// FirstBeforeEnd counts uploads whose first APPEND reached X before
	// the client had handed over its last byte.
	FirstBeforeEnd int `json:"first_append_before_last_byte"`
	Uploads        int `json:"uploads"`
	Verified       int `json:"verified_byte_exact"`
	Errors         int `json:"errors"`
	// PeakRSSMiB and CPUSecPerGiB are those of the path's own process:
	// mediagw (grpc, rest), the bare relay, or the hop's discard server;
	// none for the baseline. CPU is per run, over runs without errors.
	PeakRSSMiB   float64 `json:"peak_rss_mib,omitempty"`
	CPUSecPerGiB Summary `json:"cpu_s_per_gib"`
	// RelayCPURatio is CPUSecPerGiB.Median over the relay's in the same
	// scenario.
	RelayCPURatio float64 `json:"ratio_to_relay_cpu,omitempty"`
	// The CPU seconds per GiB of X (sink or emulator) and of the bench
	// process (the client side) during the same runs.
	XCPUSecPerGiB      Summary  `json:"x_cpu_s_per_gib"`
	ClientCPUSecPerGiB Summary  `json:"client_cpu_s_per_gib"`
	ErrorSamples       []string `json:"error_samples,omitempty"`
}

// Report is everything one bench run measured.
type Report struct {
	Date        string       `json:"date"`
	GoVersion   string       `json:"go_version"`
	CPU         string       `json:"cpu"`
	Cores       int          `json:"cores"`
	LoadBefore  string       `json:"loadavg_before"`
	LoadAfter   string       `json:"loadavg_after"`
	Quick       bool         `json:"quick"`
	X           string       `json:"x"`
	Runs        int          `json:"runs"`
	GRPCChunk   int          `json:"grpc_chunk_bytes"`
	Parallelism int          `json:"parallelism"`
	MaxInFlight int          `json:"max_in_flight"`
	Variants    []variant    `json:"variants,omitempty"`
	Seconds     float64      `json:"seconds"`
	Notes       []string     `json:"notes"`
	Rows        []Row        `json:"rows"`
	Adversarial *Adversarial `json:"adversarial,omitempty"`
	Targets     []Target     `json:"targets"`
	Failures    []string     `json:"failures,omitempty"`
}

// fillRatios sets Ratio, Ideal, OfIdeal and RelayCPURatio of the rows of
// one scenario from its baseline and relay rows. latency > 0 makes the
// round-trip ideal apply, from each row's APPEND limits.
func fillRatios(rows []Row, latency time.Duration) {
	var base, relayCPU float64
	for _, r := range rows {
		switch r.Mode {
		case modeBaseline:
			base = r.MBps.Median
		case modeRelay:
			relayCPU = r.CPUSecPerGiB.Median
		}
	}
	for i := range rows {
		r := &rows[i]
		if base > 0 && r.MBps.Median > 0 {
			r.Ratio = r.MBps.Median / base
		}
		if relayCPU > 0 && r.CPUSecPerGiB.Median > 0 && r.Mode != modeHop && r.Mode != modeGRPCHop {
			r.RelayCPURatio = r.CPUSecPerGiB.Median / relayCPU
		}
		if latency > 0 && r.Parallelism > 0 {
			r.Ideal = idealRatio(segmentsOf(r.SizeBytes, baselineSegment), r.Parallelism, r.Concurrency, r.MaxInFlight)
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

// span writes a Summary as "median (min–max)", or "–" without samples.
func span(s Summary, prec int) string {
	switch {
	case s.N == 0:
		return "–"
	case s.N == 1:
		return num(s.Median, prec)
	}
	return fmt.Sprintf("%s (%s–%s)", num(s.Median, prec), num(s.Min, prec), num(s.Max, prec))
}
