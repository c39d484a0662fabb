// Command importrule enforces mediagw's one-way import rule (make lint):
// which of mediagw's packages each package may import. The rule, package
// by package, is the table below; docs/architecture.md explains it.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
)

const module = "github.com/mediagw/mediagw"

// allowed lists, by package (a path under the module; "x/..." is x and
// every package under it), the module's packages it may import. A package
// not named here may import none. Packages under cmd/ are wired last and
// may import anything but another command.
var allowed = map[string][]string{
	"gen/...":                {"gen/..."},
	"upstream":               nil,
	"upstream/xfake/...":     {"upstream/xfake/..."},
	"service/apierr":         {"gen/..."},
	"service/backend":        nil,
	"service/bytesize":       nil,
	"service/buildinfo":      nil,
	"service/ledger":         nil,
	"service/ledger/...":     {"service/ledger/..."},
	"service/auth":           {"service/apierr"},
	"service/policy":         {"service/apierr", "service/backend", "service/bytesize", "service/inspect/..."},
	"service/mediaops":       {"gen/...", "service/apierr", "service/backend", "service/ledger", "service/relay"},
	"service/relay":          {"gen/...", "service/apierr", "service/backend"},
	"service/relay/...":      {"service/relay"},
	"service/redisstore":     {"service/ledger", "service/relay"},
	"service/redisstore/...": {"service/redisstore"},
	"service/inspect/...":    {"service/inspect/..."},
	"service/tokens/...":     {"service/tokens/..."},
	"service/engine": {"gen/...", "service/apierr", "service/auth", "service/backend", "service/ledger",
		"service/policy", "service/relay", "service/inspect/..."},
	// The transports are adapters onto the engine; neither imports the
	// other.
	"service/grpcapi": {"gen/...", "service/apierr", "service/backend", "service/engine", "service/relay", "service/mediaops"},
	"service/rest":    {"gen/...", "service/apierr", "service/backend", "service/engine", "service/relay"},
	"service/client":  {"gen/...", "service/apierr"},
}

// forbiddenExternal are imports a package may not have at all.
var forbiddenExternal = map[string][]string{
	"upstream/...": {"google.golang.org/grpc"},
}

func rule(pkg string) ([]string, bool) {
	if may, ok := allowed[pkg]; ok {
		return may, true
	}
	best, found := "", false
	for k := range allowed {
		if matches(k, pkg) && len(k) > len(best) {
			best, found = k, true
		}
	}
	return allowed[best], found
}

func matches(pattern, pkg string) bool {
	if p, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == p || strings.HasPrefix(pkg, p+"/")
	}
	return pkg == pattern
}

func main() {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}} | {{join .TestImports " "}} {{join .XTestImports " "}}`, "./...").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go list:", err)
		os.Exit(2)
	}
	var bad []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		imports, tests, _ := strings.Cut(sc.Text(), " | ")
		f := strings.Fields(imports)
		pkg := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
		for _, imp := range append(f[1:], strings.Fields(tests)...) {
			local, ok := strings.CutPrefix(imp, module+"/")
			if ok && strings.HasPrefix(local, "cmd/") && local != pkg {
				bad = append(bad, fmt.Sprintf("%s imports %s: nothing imports a command", pkg, local))
			}
		}
		for pattern, forbidden := range forbiddenExternal {
			if !matches(pattern, pkg) {
				continue
			}
			for _, imp := range f[1:] {
				for _, fb := range forbidden {
					if imp == fb || strings.HasPrefix(imp, fb+"/") {
						bad = append(bad, fmt.Sprintf("%s imports %s", pkg, imp))
					}
				}
			}
		}
		if strings.HasPrefix(pkg, "cmd/") {
			continue
		}
		may, known := rule(pkg)
		if !known {
			bad = append(bad, fmt.Sprintf("%s has no import rule: add it to cmd/importrule", pkg))
			continue
		}
		for _, imp := range f[1:] {
			local, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			okImp := false
			for _, m := range may {
				okImp = okImp || matches(m, local)
			}
			if !okImp {
				bad = append(bad, fmt.Sprintf("%s imports %s", pkg, local))
			}
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		fmt.Fprintln(os.Stderr, "import rule broken:")
		for _, b := range bad {
			fmt.Fprintln(os.Stderr, "  "+b)
		}
		os.Exit(1)
	}
}
