package deploy

import (
	"os"
	"os/exec"
	"testing"
)

// TestPromtool runs Debian's promtool on the rules: check rules, and the
// unit tests of every alert (mediagw.rules.test.yaml).
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not on PATH (.ci/deploy installs Debian's prometheus)")
		}
		t.Skip("promtool is not on PATH: apt-get install prometheus")
	}
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		cmd := exec.Command(promtool, args...)
		if args[0] == "test" {
			cmd.Dir = "prometheus"
			cmd.Args[3] = "mediagw.rules.test.yaml"
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
