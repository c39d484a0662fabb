package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestVersion: --version prints the build and exits, without the X
// configuration a start needs; MEDIAGW_VERSION is not its twin.
func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, func(string) string { return "" }, &out, &errb); err != nil {
		t.Fatalf("--version: %v", err)
	}
	if s := out.String(); !strings.HasPrefix(s, "mediagw ") || !strings.Contains(s, "(commit ") || !strings.Contains(s, "go1.") {
		t.Errorf("--version printed %q", s)
	}
	env := func(k string) string {
		if k == "MEDIAGW_VERSION" {
			return "true"
		}
		return ""
	}
	out.Reset()
	err := run(context.Background(), nil, env, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "--emulator") {
		t.Errorf("MEDIAGW_VERSION=true alone: err %v, out %q; want the missing X configuration", err, out.String())
	}
}
