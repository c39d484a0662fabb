package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/mediagw/mediagw/upstream/xfake"
)

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// lastFrame returns the bar lines of the last redraw: the text after the
// last cursor-up sequence, with escapes removed.
func lastFrame(raw string) string {
	if i := strings.LastIndex(raw, "A\x1b[J"); i >= 0 {
		raw = raw[i:]
	}
	return ansi.ReplaceAllString(strings.ReplaceAll(raw, "\r", ""), "")
}

// TestProgressBarOnTerminal runs an upload with stderr on a pseudo
// terminal: the bars are drawn in place and end at 100 % for the upload
// and for X's processing.
func TestProgressBarOnTerminal(t *testing.T) {
	t.Parallel()
	st := newStack(t, xfake.Options{
		// Slow X's reading a little so the upload is drawn more than once.
		Bandwidth: 20 << 20,
	})
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&raw, ptmx) // ends with EIO once tty is closed
		close(copied)
	}()
	path, _ := writeMedia(t, "clip.mp4", mp4Magic, 6<<20, 31)
	var stdout bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, []string{"upload", path, "--watch", "--server", st.grpcAddr}, func(string) string { return "" }, &stdout, tty)
	_ = tty.Close()
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal output did not end")
	}
	out := raw.String()
	if code != exitOK {
		t.Fatalf("exit %d; terminal:\n%s", code, lastFrame(out))
	}
	if !strings.Contains(out, "\x1b[") {
		t.Fatalf("no escape sequences: the bars were not redrawn in place:\n%q", out)
	}
	frame := lastFrame(out)
	upload := regexp.MustCompile(`clip\.mp4 +upload +6\.0 MiB / 6\.0 MiB \[=+\] +100 % +done`)
	process := regexp.MustCompile(`clip\.mp4 +process +succeeded \[=+\] +100 %`)
	if !upload.MatchString(frame) || !process.MatchString(frame) {
		t.Fatalf("the last frame does not end both bars at 100 %%:\n%s", frame)
	}
	if !strings.Contains(stdout.String(), "PROCESSING_STATE_SUCCEEDED") {
		t.Fatalf("stdout %q", stdout.String())
	}
}

// TestProgressBarForced draws the bars into a pipe with --progress always,
// and none with --progress never.
func TestProgressBarForced(t *testing.T) {
	t.Parallel()
	st := newStack(t, xfake.Options{})
	path, _ := writeMedia(t, "pic.png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1<<20, 32)
	code, _, stderr := ctl(t, nil, "upload", path, "--progress", "always", "--server", st.grpcAddr)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	if !regexp.MustCompile(`pic\.png +upload +1\.0 MiB / 1\.0 MiB \[=+\] +100 % +done`).MatchString(lastFrame(stderr)) {
		t.Fatalf("--progress always: last frame\n%s", lastFrame(stderr))
	}
	code, _, stderr = ctl(t, nil, "upload", path, "--progress", "never", "--server", st.grpcAddr)
	if code != exitOK || stderr != "" {
		t.Fatalf("--progress never: exit %d, stderr %q", code, stderr)
	}
}
