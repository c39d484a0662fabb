package main

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/client"
)

func TestDeriveKey(t *testing.T) {
	t.Parallel()
	const sum = "e016334a96574943f3f09696f1a48ea76c6a9c04eccbe14d612bdc0b6b74c0ca"
	base := deriveKey(sum, 100, "", "video/mp4", 0)
	if base != deriveKey(sum, 100, "", "video/mp4", 0) {
		t.Fatal("the key is not deterministic")
	}
	if !client.ValidKey(base) || !strings.HasPrefix(base, "ctl-") || len(base) != 36 {
		t.Fatalf("key %q is not a valid mediagw key", base)
	}
	others := []string{
		deriveKey(strings.Replace(sum, "e", "f", 1), 100, "", "video/mp4", 0),
		deriveKey(sum, 101, "", "video/mp4", 0),
		deriveKey(sum, 100, "brand", "video/mp4", 0),
		deriveKey(sum, 100, "", "video/quicktime", 0),
		deriveKey(sum, 100, "", "video/mp4", mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_VIDEO),
	}
	for i, k := range others {
		if k == base || slices.Index(others, k) != i {
			t.Fatalf("key %d (%q) collides", i, k)
		}
	}
}

func TestDetectType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, head, want string }{
		{"clip.bin", mp4Magic, "video/mp4"},
		{"x", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"},
		{"x.png", "GIF89a......", "image/gif"}, // the bytes win over the name
		{"subs.SRT", "1\n00:00:01,000 --> 00:00:02,000\n", "text/srt"},
		{"stream.ts", "\x47\x40\x00", "video/mp2t"},
		{"notes.txt", "hello world, a plain file", ""},
	} {
		if got := detectType(tc.name, []byte(tc.head)); got != tc.want {
			t.Errorf("detectType(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	watch := fs.Bool("watch", false, "")
	j := fs.Int("j", 1, "")
	pos, err := parseArgs(fs, []string{"a.mp4", "--watch", "b.mp4", "-j", "3", "--", "-c.mp4", "--json"})
	if err != nil {
		t.Fatal(err)
	}
	if !*watch || *j != 3 || !slices.Equal(pos, []string{"a.mp4", "b.mp4", "-c.mp4", "--json"}) {
		t.Fatalf("watch %v j %d files %q", *watch, *j, pos)
	}
}

func TestEnvTwins(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var o connOptions
	o.register(fs)
	if err := fs.Parse([]string{"--server", "10.0.0.1:9"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MEDIAGWCTL_SERVER": "ignored:1", "MEDIAGWCTL_TOKEN_FILE": "/run/jwt", "MEDIAGWCTL_RETRIES": "3"}
	if err := applyEnv(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if o.Server != "10.0.0.1:9" || o.TokenFile != "/run/jwt" || o.Retries != 3 {
		t.Fatalf("options %+v", o)
	}
	if !o.useTLS() {
		t.Fatal("a remote server without --plaintext must use TLS")
	}
	o.Server = "127.0.0.1:9090"
	if o.useTLS() {
		t.Fatal("a loopback server without TLS flags is plaintext")
	}
	o.CACert = "ca.pem"
	if !o.useTLS() {
		t.Fatal("--cacert means TLS")
	}
	env["MEDIAGWCTL_RETRIES"] = "many"
	if err := applyEnv(fs, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "MEDIAGWCTL_RETRIES") {
		t.Fatalf("a bad variable: %v", err)
	}
}

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3000012: "2.9 MiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
