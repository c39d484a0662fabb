package buildinfo

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/mediagw/mediagw", Version: "v0.3.1"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"},
			{Key: "vcs.modified", Value: "true"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
		},
	}
	cases := []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		ok                    bool
		want                  Info
	}{
		{"embedded only", "", "", "", bi, true,
			Info{"v0.3.1", "0123456789ab+dirty", "2026-12-01T10:00:00Z", "go1.26.8"}},
		{"ldflags win", "v1.0.0", "fedcba9", "2026-12-03T09:00:00Z", bi, true,
			Info{"v1.0.0", "fedcba9", "2026-12-03T09:00:00Z", "go1.26.8"}},
		{"devel build without vcs", "", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true,
			Info{"devel", "unknown", "unknown", "go1.26.8"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := resolve(c.version, c.commit, c.date, c.bi, c.ok); got != c.want {
				t.Errorf("resolve = %+v, want %+v", got, c.want)
			}
		})
	}
	if got, want := (Info{"v1.0.0", "fedcba9", "2026-12-03T09:00:00Z", "go1.26.8"}).String(),
		"v1.0.0 (commit fedcba9, built 2026-12-03T09:00:00Z, go1.26.8)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

// TestLdflags builds a program with the values stamped as make build does
// and checks that they are what it reports.
func TestLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	main := filepath.Join(dir, "main.go")
	src := "package main\n\nimport (\n\t\"fmt\"\n\n\t\"github.com/mediagw/mediagw/service/buildinfo\"\n)\n\nfunc main() { fmt.Print(buildinfo.String()) }\n"
	if err := writeFile(main, src); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "stamped")
	pkg := "github.com/mediagw/mediagw/service/buildinfo"
	ld := "-X " + pkg + ".Version=v9.8.7 -X " + pkg + ".Commit=abc1234 -X " + pkg + ".Date=2026-12-03T09:00:00Z"
	if out, err := exec.Command("go", "build", "-ldflags", ld, "-o", bin, main).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "v9.8.7 (commit abc1234, built 2026-12-03T09:00:00Z, go1.") {
		t.Errorf("stamped binary says %q", out)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
