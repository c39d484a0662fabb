package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	rulesFile     = "prometheus/mediagw.rules.yaml"
	rulesTestFile = "prometheus/mediagw.rules.test.yaml"
	dashboardFile = "grafana/mediagw.json"
)

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Record      string            `json:"record"`
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return f
}

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// dashboardExprs are the dashboard's queries with Grafana's variables
// replaced as Grafana would for the job "mediagw".
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	vars := strings.NewReplacer("$__rate_interval", "1m", "${job}", "mediagw", "$job", "mediagw")
	out := map[string]string{}
	for _, p := range loadDashboard(t).Panels {
		for i, tg := range p.Targets {
			if strings.Contains(vars.Replace(tg.Expr), "$") {
				t.Errorf("panel %q: %s uses a variable the dashboard does not define", p.Title, tg.Expr)
			}
			out[p.Title+" #"+string(rune('A'+i))] = vars.Replace(tg.Expr)
		}
	}
	return out
}

var (
	quoted   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	selector = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?`)
	// promql words that are not series.
	promqlWords = map[string]bool{}
)

func init() {
	for _, w := range strings.Fields(`sum by without on ignoring group_left group_right rate irate increase
		changes histogram_quantile max_over_time count max min avg and or unless le bool offset
		label_values humanizePercentage humanize humanizeDuration printf value labels instance`) {
		promqlWords[w] = true
	}
}

// seriesSelectors returns the series selectors an expression reads
// (name{matchers}), leaving out label names, functions and literals.
func seriesSelectors(expr string) []string {
	// Hide string literals so that label values are not taken for names,
	// keeping them inside braces where they belong to matchers.
	var lits []string
	masked := quoted.ReplaceAllStringFunc(expr, func(s string) string {
		lits = append(lits, s)
		return "\x00"
	})
	var sels []string
	// Grouping clauses list label names: drop them.
	masked = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`).ReplaceAllString(masked, "")
	for _, m := range selector.FindAllStringSubmatchIndex(masked, -1) {
		name := masked[m[2]:m[3]]
		if promqlWords[name] || !(strings.HasPrefix(name, "mediagw") || strings.HasPrefix(name, "process_") || name == "up") {
			continue
		}
		// A name followed by "(" is a function.
		if rest := strings.TrimLeft(masked[m[1]:], " "); m[4] < 0 && strings.HasPrefix(rest, "(") {
			continue
		}
		sel := name
		if m[4] >= 0 {
			sel += masked[m[4]:m[5]]
		}
		sels = append(sels, sel)
	}
	// Put the literals back.
	i := 0
	for k, s := range sels {
		for strings.Contains(s, "\x00") {
			s = strings.Replace(s, "\x00", lits[i], 1)
			i++
		}
		sels[k] = s
	}
	return sels
}

// ruleSelectors is every series selector of every rule, and the names the
// recording rules record.
func ruleSelectors(t *testing.T) (sels []string, recorded map[string]bool) {
	recorded = map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
			sels = append(sels, seriesSelectors(r.Expr)...)
		}
	}
	return uniq(sels), recorded
}

func uniq(s []string) []string {
	m := map[string]bool{}
	var out []string
	for _, v := range s {
		if !m[v] {
			m[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// TestSeriesSelectors checks the extraction the end-to-end test relies on.
func TestSeriesSelectors(t *testing.T) {
	got := seriesSelectors(`sum by (job, result) (rate(mediagw_uploads_failed_total{result=~"Unavailable|x"}[5m])) / ignoring (result) group_left mediagw:uploads_started:rate5m > 0 unless on (job) up{job="mediagw"} == 0 and changes(process_start_time_seconds[30m]) > 2`)
	want := []string{`mediagw_uploads_failed_total{result=~"Unavailable|x"}`, "mediagw:uploads_started:rate5m", `up{job="mediagw"}`, "process_start_time_seconds"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("seriesSelectors = %q, want %q", got, want)
	}
}

// TestEveryAlertIsTested: every alert has a promtool test that expects it
// to fire, and a runbook line in docs/operations.md.
func TestEveryAlertIsTested(t *testing.T) {
	tests, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !regexp.MustCompile(`(?m)^\s+alertname: ` + r.Alert + `$`).Match(tests) {
				t.Errorf("alert %s has no promtool test in %s", r.Alert, rulesTestFile)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s has no severity or summary", r.Alert)
			}
			anchor := "docs/operations.md#" + strings.ToLower(r.Alert)
			if r.Annotations["runbook"] != anchor {
				t.Errorf("alert %s: runbook %q, want %q", r.Alert, r.Annotations["runbook"], anchor)
			}
			if !regexp.MustCompile(`(?m)^#+ ` + r.Alert + `$`).Match(ops) {
				t.Errorf("alert %s has no heading in docs/operations.md", r.Alert)
			}
		}
	}
	if n < 10 {
		t.Errorf("%d alerts; the rules have more", n)
	}
}
