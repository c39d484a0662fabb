package deploy

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"go.uber.org/goleak"
)

// bins holds the real binaries the tests check the files against, built
// once from the parent module: mediagw and the X emulator.
var bins struct{ dir, mediagw, xfake string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mediagw-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	bins.mediagw = filepath.Join(dir, "mediagw")
	bins.xfake = filepath.Join(dir, "xfake")
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/mediagw", "./cmd/xfake")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building mediagw and xfake: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		// Every process a test started has been waited for, and no
		// goroutine outlives the tests (idle HTTP connections closed).
		http.DefaultClient.CloseIdleConnections()
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// helpFlag is a flag `mediagw -h` lists: its name and whether it takes a
// value (boolean flags do not).
var helpFlag = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)(?: (\S+))?$`)

// mediagwFlags parses the real binary's -h: flag name → takes a value.
func mediagwFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, _ := exec.Command(bins.mediagw, "-h").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = m[2] != ""
	}
	if len(flags) < 20 || !flags["ledger"] || !flags["admin-addr"] || flags["emulator"] {
		t.Fatalf("mediagw -h did not list its flags as expected (%d parsed):\n%s", len(flags), out)
	}
	return flags
}
