package main

import (
	"fmt"
	"strings"
)

// markdown renders the report as a markdown document: the settings, the
// main table, the targets and the adversarial rows.
func markdown(rep Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## mediagw benchmark, %s\n\n", rep.Date)
	fmt.Fprintf(&b, "- %s; CPU %s, %d cores; load average %s before, %s after\n", rep.GoVersion, rep.CPU, rep.Cores, rep.LoadBefore, rep.LoadAfter)
	mode := "full"
	if rep.Quick {
		mode = "quick"
	}
	if len(rep.Rows) > 0 {
		fmt.Fprintf(&b, "- %s mode, X = %s, %d run(s) per row, %.0f s in all; mediagw --parallelism %d --max-in-flight %d; gRPC chunks of %s\n",
			mode, rep.X, rep.Runs, rep.Seconds, rep.Parallelism, rep.MaxInFlight, sizeText(int64(rep.GRPCChunk)))
	} else {
		fmt.Fprintf(&b, "- %s mode, adversarial rows only, %.0f s in all; mediagw --parallelism %d --max-in-flight %d\n",
			mode, rep.Seconds, rep.Parallelism, rep.MaxInFlight)
	}
	for _, v := range rep.Variants {
		if v.Name != "" {
			fmt.Fprintf(&b, "- variant %s: mediagw %s\n", v.Name, strings.Join(v.Args, " "))
		}
	}
	if len(rep.Rows) > 0 {
		for _, n := range rep.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n| scenario | path | MB/s median (min–max) | × baseline | ideal × | measured/ideal | 1st APPEND ms | 1st APPEND before last byte | peak RSS MiB | CPU s/GiB median (min–max) | × relay CPU | X CPU s/GiB | client CPU s/GiB | errors | byte-exact |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	}
	for _, r := range rep.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d/%d |\n",
			r.Scenario, r.Path, span(r.MBps, 1), num(r.Ratio, 2), num(r.Ideal, 2), num(r.OfIdeal, 2),
			num(r.FirstAppendMS.Median, 0), firstBefore(r),
			num(r.PeakRSSMiB, 0), span(r.CPUSecPerGiB, 2), num(r.RelayCPURatio, 2),
			span(r.XCPUSecPerGiB, 2), span(r.ClientCPUSecPerGiB, 2), r.Errors, r.Verified, r.Uploads)
	}
	if len(rep.Targets) > 0 {
		b.WriteString("\nTargets (from the rows above and below):\n\n| target | measured | met |\n|---|---|---|\n")
		for _, t := range rep.Targets {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Name, t.Measured, t.verdict())
		}
	}
	if rep.Adversarial != nil {
		b.WriteString(rep.Adversarial.markdown())
	}
	var samples []string
	for _, r := range rep.Rows {
		for _, e := range r.ErrorSamples {
			samples = append(samples, fmt.Sprintf("%s %s: %s", r.Scenario, r.Path, e))
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

// firstBefore is "n/uploads" for paths where X sees APPENDs, else "–".
func firstBefore(r Row) string {
	if r.Mode == modeHop || r.Mode == modeGRPCHop {
		return "–"
	}
	return fmt.Sprintf("%d/%d", r.FirstBeforeEnd, r.Uploads)
}

// notes explains the columns of the main table.
func notes(x, digest string) []string {
	return []string{
		"MB/s = 10^6 bytes/s of all uploads of a run together (wall time from the first byte sent to the last answer); ratios compare medians within a scenario",
		"paths: baseline = INIT + sequential 4 MiB multipart APPENDs + FINALIZE straight to X (xurl / X sample code); grpc, rest = through a fresh mediagw process per scenario and path; " +
			"relay = the bare relay, a process that reads a raw POST body in 4 MiB pieces and APPENDs them to X, 4 in flight, nothing else; " +
			"hop = the same bytes POSTed over one loopback HTTP connection to a process that discards them",
		"X = " + map[string]string{xSink: "the sink, a minimal X in its own process: v2 endpoints, multipart parsed as it streams, an " + strings.ToUpper(digest) + " digest in segment order, nothing on disk", xEmulator: "cmd/xfake, the full emulator (validation, spill files, rate-limit and fault machinery)"}[x],
		"ideal × = (2+S)/(2+ceil(C·S/min(C·P, M))) for latency scenarios (S 4 MiB segments per upload, C uploads at once, P per-upload and M global APPEND limits); – where latency is 0",
		"1st APPEND ms = X's first APPEND − client's first send, median over uploads; peak RSS = max(VmHWM, VmRSS sampled every 10 ms) of the path's process",
		"CPU s/GiB = utime+stime per GiB moved, per run, of the path's own process: mediagw (grpc, rest), the relay (relay), the discard server (hop); × relay CPU = that median over the relay's in the same scenario; X and client CPU = the X process and the bench process (the callers) in the same runs",
	}
}
