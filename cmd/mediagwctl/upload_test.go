package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// transports runs a subtest over gRPC and over REST, giving the flags
// that select each against s.
func transports(t *testing.T, s func(t *testing.T) *stack, fn func(t *testing.T, st *stack, flags []string)) {
	for _, tr := range []string{"grpc", "rest"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			st := s(t)
			flags := []string{"--server", st.grpcAddr}
			if tr == "rest" {
				flags = []string{"--rest", "--rest-url", "http://" + st.httpAddr}
			}
			fn(t, st, flags)
		})
	}
}

func newDefaultStack(t *testing.T) *stack { return newStack(t, xfake.Options{}) }

func TestUploadWatchSucceeds(t *testing.T) {
	t.Parallel()
	transports(t, newDefaultStack, func(t *testing.T, st *stack, flags []string) {
		path, sum := writeMedia(t, "clip.mp4", mp4Magic, 3<<20+5, 1)
		code, stdout, stderr := ctl(t, nil, append([]string{"upload", path, "--watch", "--json"}, flags...)...)
		if code != exitOK {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr)
		}
		res := jsonResults(t, stdout)
		if len(res) != 1 {
			t.Fatalf("%d JSON objects, want 1:\n%s", len(res), stdout)
		}
		r := res[0]
		if r.File != path || r.MediaID == "" || r.MediaKey == "" || r.Size != 3<<20+5 || r.SHA256 != sum ||
			r.State != "PROCESSING_STATE_SUCCEEDED" || r.Error != "" || !strings.HasPrefix(r.IdempotencyKey, "ctl-") {
			t.Fatalf("result %+v", r)
		}
		info := st.x.Media(t, r.MediaID)
		if info.SHA256 != sum || info.Size != 3<<20+5 || info.MediaType != "video/mp4" {
			t.Fatalf("X holds %+v, want sha256 %s", info, sum)
		}
		if stderr != "" {
			t.Fatalf("stderr is not empty without a terminal:\n%s", stderr)
		}
	})
}

func TestUploadFailureExitsOne(t *testing.T) {
	t.Parallel()
	transports(t, newDefaultStack, func(t *testing.T, st *stack, flags []string) {
		path, _ := writeMedia(t, "clip.mp4", mp4Magic, 100<<10, 2)
		code, stdout, stderr := ctl(t, nil, append([]string{"upload", path, "--media-type", "image/png", "--json"}, flags...)...)
		if code != exitFailed {
			t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailed, stderr)
		}
		res := jsonResults(t, stdout)
		if len(res) != 1 || res[0].MediaID != "" || !strings.Contains(res[0].Error, "InvalidArgument") ||
			!strings.Contains(res[0].Error, "video/mp4") {
			t.Fatalf("results %+v", res)
		}
		if !strings.Contains(stderr, "InvalidArgument") {
			t.Fatalf("stderr does not say why:\n%s", stderr)
		}
		if n := st.inits(); n != 0 {
			t.Fatalf("X saw %d INITs for a refused upload", n)
		}
	})
}

func TestProcessingFailureExitsThree(t *testing.T) {
	t.Parallel()
	transports(t, newDefaultStack, func(t *testing.T, st *stack, flags []string) {
		// MPEG-TS is not sniffed by mediagw; X's processing rejects bytes
		// that do not start with the sync byte 0x47.
		path, _ := writeMedia(t, "broken.ts", "\x00", 200<<10, 3)
		code, stdout, stderr := ctl(t, nil, append([]string{"upload", path, "--watch", "--json"}, flags...)...)
		if code != exitProcessing {
			t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitProcessing, stderr)
		}
		res := jsonResults(t, stdout)
		if len(res) != 1 {
			t.Fatalf("results %+v", res)
		}
		r := res[0]
		if r.MediaID == "" || r.State != "PROCESSING_STATE_FAILED" || r.ProcessingError == nil ||
			r.ProcessingError.Name != "InvalidMedia" || !strings.Contains(r.Error, "Unsupported video format") {
			t.Fatalf("result %+v", r)
		}
		if !strings.Contains(stderr, "InvalidMedia") {
			t.Fatalf("stderr does not print X's error:\n%s", stderr)
		}
	})
}

func TestServerDownGivesUpWithResumeHint(t *testing.T) {
	t.Parallel()
	path, _ := writeMedia(t, "clip.mp4", mp4Magic, 10<<10, 4)
	// A port nothing listens on: every attempt is Unavailable.
	code, stdout, stderr := ctl(t, nil, "upload", path, "--server", closedPort(t), "--retries", "2", "--json")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailed, stderr)
	}
	res := jsonResults(t, stdout)
	if len(res) != 1 || !strings.Contains(res[0].Error, "run the same command again to resume") ||
		!strings.Contains(res[0].Error, res[0].IdempotencyKey) {
		t.Fatalf("results %+v", res)
	}
	if n := strings.Count(stderr, "resuming at 0 B"); n != 2 {
		t.Fatalf("%d retry notices on stderr, want 2:\n%s", n, stderr)
	}
}

func TestParallelUploads(t *testing.T) {
	t.Parallel()
	st := newStack(t, xfake.Options{})
	var paths, sums []string
	for i, magic := range []string{mp4Magic, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "GIF89a"} {
		p, s := writeMedia(t, []string{"a.mp4", "b.png", "c.gif"}[i], magic, (1+i)<<20, uint64(10+i))
		paths, sums = append(paths, p), append(sums, s)
	}
	args := append([]string{"upload", "-j", "3", "--json", "--watch", "--server", st.grpcAddr}, paths...)
	code, stdout, stderr := ctl(t, nil, args...)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	res := jsonResults(t, stdout)
	if len(res) != 3 {
		t.Fatalf("%d results:\n%s", len(res), stdout)
	}
	ids := map[string]bool{}
	for i, r := range res {
		if r.File != paths[i] || r.State != "PROCESSING_STATE_SUCCEEDED" || ids[r.MediaID] {
			t.Fatalf("result %d: %+v", i, r)
		}
		ids[r.MediaID] = true
		if got := st.x.Media(t, r.MediaID).SHA256; got != sums[i] {
			t.Fatalf("%s: X holds sha256 %s, want %s", r.File, got, sums[i])
		}
	}
	if n := st.inits(); n != 3 {
		t.Fatalf("X saw %d INITs, want 3", n)
	}
}

func TestUsageExitsTwo(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"upload"},
		{"upload", "--no-such-flag", "x.mp4"},
		{"upload", "-j", "0", "x.mp4"},
		{"upload", "--idempotency-key", "k1", "a.mp4", "b.mp4"},
		{"upload", "--idempotency-key", "no spaces", "a.mp4"},
		{"upload", "--category", "tweet_poster", "a.mp4"},
		{"upload", "--cert", "c.pem", "a.mp4"},
		{"status"},
		{"watch", "1", "2"},
		{"uploads", "--server", "no-port", "k"},
	} {
		code, _, stderr := ctl(t, nil, args...)
		if code != exitUsage || stderr == "" {
			t.Errorf("%q: exit %d, want %d with a message; stderr %q", args, code, exitUsage, stderr)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"upload", "status", "watch", "uploads"} {
		code, _, stderr := ctl(t, nil, cmd, "--help")
		if code != exitOK || !strings.Contains(stderr, "Example:") || !strings.Contains(stderr, "-server") {
			t.Errorf("%s --help: exit %d\n%s", cmd, code, stderr)
		}
	}
	code, stdout, _ := ctl(t, nil, "version")
	if code != exitOK || !strings.HasPrefix(stdout, "mediagwctl ") || !strings.Contains(stdout, "go1.") {
		t.Errorf("version: exit %d %q", code, stdout)
	}
}

// TestXAccessTokenFile uploads as an X user: the token in the file reaches
// X (a token X refuses fails the upload with Unauthenticated, one it
// accepts succeeds), over both transports.
func TestXAccessTokenFile(t *testing.T) {
	t.Parallel()
	withUsers := func(t *testing.T) *stack { return newStack(t, xfake.Options{Tokens: []string{"T", "user-token"}}) }
	transports(t, withUsers, func(t *testing.T, st *stack, flags []string) {
		path, _ := writeMedia(t, "pic.png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 64<<10, 5)
		dir := t.TempDir()
		good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
		if err := os.WriteFile(good, []byte("user-token\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bad, []byte("revoked-token\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := ctl(t, nil, append([]string{"upload", path, "--x-access-token-file", bad}, flags...)...)
		if code != exitFailed || !strings.Contains(stderr, "Unauthenticated") {
			t.Fatalf("refused token: exit %d, stderr %q", code, stderr)
		}
		env := map[string]string{"MEDIAGWCTL_X_ACCESS_TOKEN_FILE": good}
		code, stdout, stderr := ctl(t, env, append([]string{"upload", path, "--json"}, flags...)...)
		if code != exitOK || jsonResults(t, stdout)[0].State != "PROCESSING_STATE_SUCCEEDED" {
			t.Fatalf("accepted token: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
}
