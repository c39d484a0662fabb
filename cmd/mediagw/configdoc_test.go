package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the flags")

// TestConfigurationDoc: docs/configuration.md is the flags' own reference,
// generated from the flag set (go test ./cmd/mediagw -run
// TestConfigurationDoc -update rewrites it), so that it never drifts from
// the binary.
func TestConfigurationDoc(t *testing.T) {
	const path = "../../docs/configuration.md"
	got := configurationDoc()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/mediagw -run TestConfigurationDoc -update)", err)
	}
	if string(want) != got {
		t.Fatalf("docs/configuration.md is not what the flags say: run go test ./cmd/mediagw -run TestConfigurationDoc -update")
	}
}

func configurationDoc() string {
	_, fs := newFlags(io.Discard)
	var b strings.Builder
	b.WriteString(`# Configuration

Every flag of ` + "`mediagw`" + ` has an environment twin: ` + "`MEDIAGW_`" + ` and the flag's name in
upper case with dashes as underscores (` + "`--max-uploads`" + ` is ` + "`MEDIAGW_MAX_UPLOADS`" + `). A flag
given on the command line wins over its variable. Secrets (tokens, client secrets) belong in
the environment or in an ` + "`--accounts`" + ` file, never on the command line, where any user of the
machine can read them (mediagw warns when one is). Sizes are written as ` + "`4MiB`" + `, ` + "`40MB`" + ` or a
number of bytes; durations as Go durations (` + "`30s`" + `, ` + "`2m`" + `).

This page is generated from the flags (` + "`go test ./cmd/mediagw -run TestConfigurationDoc -update`" + `);
` + "`mediagw -h`" + ` prints the same.

| flag | environment | default | meaning |
|---|---|---|---|
`)
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def != "" {
			def = "`" + def + "`"
		}
		usage := strings.ReplaceAll(f.Usage, "|", `\|`)
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", f.Name, envName(f.Name), def, usage)
	})
	return b.String()
}
