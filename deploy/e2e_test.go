package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPrometheusEndToEnd starts a real Prometheus (Debian's) scraping a
// real mediagw's admin port every second, with mediagw.rules.yaml loaded,
// while uploads succeed and fail against the emulator (503, 500 and reset
// faults; a tight INIT rate limit), and STATUS is watched. It then queries
// Prometheus' HTTP API: every series selector of the rules and of the
// dashboard has data, every recording rule has recorded something, the
// counters the alerts watch increase, and every dashboard query returns a
// result.
func TestPrometheusEndToEnd(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is not on PATH (.ci/deploy installs Debian's prometheus)")
		}
		t.Skip("prometheus is not on PATH: apt-get install prometheus")
	}
	ruleSels, recorded := ruleSelectors(t)
	dash := dashboardExprs(t)
	var dashSels []string
	for _, e := range dash {
		dashSels = append(dashSels, seriesSelectors(e)...)
	}
	sels := uniq(append(append([]string{}, ruleSels...), dashSels...))
	for r := range recorded {
		sels = append(sels, r)
	}
	// The series move while uploads succeed and fail, as the alerts need.
	moved := []string{
		`mediagw_uploads_completed_total{job="mediagw"}`,
		`mediagw_uploads_failed_total{job="mediagw",result="Unavailable"}`,
		`mediagw_uploads_failed_total{job="mediagw",result="ResourceExhausted"}`,
		`mediagw_upstream_requests_total{job="mediagw",http_response_status_code="429"}`,
		`mediagw_upstream_requests_total{job="mediagw",http_response_status_code=~"5.."}`,
		`mediagw_upstream_retries_total{job="mediagw"}`,
		`mediagw_upstream_rate_limit_waits_total{job="mediagw"}`,
		`mediagw_status_polls_total{job="mediagw",result!="OK"}`,
	}
	for _, m := range moved {
		sels = append(sels, "sum(increase("+m+"[10m])) > 0")
	}

	xurl := startXfake(t, "-fault-rate", "0.25", "-fault-kinds", "503,500,reset", "-seed", "22",
		"-processing-time", "1500ms", "-rate-limit", "init=4/2s")
	httpAddr, grpcAddr, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	mgw := start(t, []string{"MEDIAGW_X_TOKEN=e2e-token"}, bins.mediagw,
		"--x-api-url", xurl, "--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--admin-addr", adminAddr,
		"--ledger", "off", "--max-attempts", "2", "--rate-limit-wait", "3s",
		"--max-uploads", "2", "--buffer-wait", "200ms", "--log-level", "warn")
	waitHTTP(t, mgw, "http://"+adminAddr+"/readyz", http.StatusOK, 20*time.Second)

	dir := t.TempDir()
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: mediagw
    static_configs:
      - targets: [%q]
`, rules, adminAddr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := freeAddr(t)
	prom := start(t, nil, promBin, "--config.file", filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path", filepath.Join(dir, "data"), "--web.listen-address", promAddr)
	waitHTTP(t, prom, "http://"+promAddr+"/-/ready", http.StatusOK, 30*time.Second)

	// Traffic, in rounds, until every selector has data or the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	missing := sels
	codes := map[int]int{}
	for round := 1; ; round++ {
		traffic(t, ctx, xurl, httpAddr, codes)
		before := len(missing)
		missing = withoutData(t, promAddr, missing)
		if len(missing) != before {
			t.Logf("round %d: %d selectors still without data %v", round, len(missing), missing)
		}
		if len(missing) == 0 {
			t.Logf("every series had data after %d rounds of traffic; upload answers %v", round, codes)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after %d rounds (upload answers %v) these have no data in Prometheus:\n  %s",
				round, codes, strings.Join(missing, "\n  "))
		}
	}
	for name, e := range dash {
		if n := resultCount(t, promAddr, e); n == 0 {
			t.Errorf("dashboard query %s returns nothing: %s", name, e)
		}
	}
	checkBounded(t, promAddr)
	// The rules loaded and were evaluated without error.
	var rg struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				}
			}
		}
	}
	getJSON(t, "http://"+promAddr+"/api/v1/rules", &rg)
	n := 0
	for _, g := range rg.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				t.Errorf("rule %s: health %s %s", r.Name, r.Health, r.LastError)
			}
		}
	}
	if n == 0 {
		t.Error("Prometheus loaded no rule")
	}
	t.Logf("%d selectors and %d dashboard queries checked, %d rules loaded", len(sels), len(dash), n)
}

// traffic is one round: another client of the same X account spends the
// INIT window behind mediagw's back (X then answers mediagw's next INIT
// with 429, and mediagw waits for the reset); sequential uploads (some fail
// on X's faults); a burst of concurrent ones (beyond --max-uploads they
// wait --buffer-wait and are refused with ResourceExhausted); a STATUS
// watch of one video to its end, and one of a media id X does not know.
func traffic(t *testing.T, ctx context.Context, xurl, httpAddr string, codes map[int]int) {
	for i := 0; i < 4; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, xurl+"/2/media/upload/initialize",
			strings.NewReader(`{"media_type":"video/mp4","total_bytes":1000,"media_category":"tweet_video"}`))
		req.Header.Set("Authorization", "Bearer e2e-token")
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	var mu sync.Mutex
	var ids []string
	one := func(n int) {
		code, id := upload(t, httpAddr, video(n), "video/mp4", "tweet_video")
		mu.Lock()
		codes[code]++
		if id != "" {
			ids = append(ids, id)
		}
		mu.Unlock()
	}
	for i := 0; i < 3 && ctx.Err() == nil; i++ {
		one(300_000)
	}
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); one(100_000) }()
	}
	wg.Wait()
	if len(ids) > 0 {
		watch(t, ctx, httpAddr, ids[0])
	}
	// A media id X does not know: its poll fails (X answers 400).
	watch(t, ctx, httpAddr, "1234567890123")
}

// watch follows a media id's STATUS over Server-Sent Events until it ends.
func watch(t *testing.T, ctx context.Context, httpAddr, id string) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/v1/media/"+id+"/status:watch", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Logf("watch %s: %v", id, err)
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "SUCCEEDED") || strings.Contains(l, "FAILED") {
			return
		}
	}
}

// withoutData returns the selectors that have no sample in Prometheus now.
func withoutData(t *testing.T, promAddr string, sels []string) []string {
	var out []string
	for _, s := range sels {
		if resultCount(t, promAddr, s) == 0 {
			out = append(out, s)
		}
	}
	return out
}

func resultCount(t *testing.T, promAddr, query string) int {
	t.Helper()
	var r struct {
		Status string
		Error  string
		Data   struct{ Result []json.RawMessage }
	}
	getJSON(t, "http://"+promAddr+"/api/v1/query?query="+url.QueryEscape(query), &r)
	if r.Status != "success" {
		t.Fatalf("query %s: %s %s", query, r.Status, r.Error)
	}
	return len(r.Data.Result)
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// checkBounded: after all that traffic (hundreds of media ids, every
// failure kind), mediagw's series stay few, and no label carries a media
// id, a token or an address chosen by a caller.
func checkBounded(t *testing.T, promAddr string) {
	var names struct{ Data []string }
	getJSON(t, "http://"+promAddr+"/api/v1/label/__name__/values?match[]="+url.QueryEscape(`{job="mediagw",__name__=~"mediagw_.*"}`), &names)
	total := 0
	for _, n := range names.Data {
		c := resultCount(t, promAddr, n+`{job="mediagw"}`)
		total += c
		if c > 120 {
			t.Errorf("%s has %d series: a label is not bounded", n, c)
		}
	}
	var lbls struct{ Data []string }
	getJSON(t, "http://"+promAddr+"/api/v1/labels?match[]="+url.QueryEscape(`{job="mediagw",__name__=~"mediagw_.*"}`), &lbls)
	longDigits := regexp.MustCompile(`^[0-9]{10,}$`)
	for _, l := range lbls.Data {
		var vals struct{ Data []string }
		getJSON(t, "http://"+promAddr+"/api/v1/label/"+l+"/values?match[]="+url.QueryEscape(`{job="mediagw",__name__=~"mediagw_.*"}`), &vals)
		if l != "le" && l != "__name__" && len(vals.Data) > 20 {
			t.Errorf("label %s has %d values: %v", l, len(vals.Data), vals.Data)
		}
		for _, v := range vals.Data {
			if longDigits.MatchString(v) || strings.Contains(v, "e2e-token") {
				t.Errorf("label %s carries %q (a media id or a token)", l, v)
			}
		}
	}
	t.Logf("%d mediagw_* metric names, %d series, %d label names", len(names.Data), total, len(lbls.Data))
}
