package deploy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a process a test started; it is stopped when the test ends.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
	err  error
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

type lockedWriter struct{ p *proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

func start(t *testing.T, env []string, name string, arg ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, arg...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = lockedWriter{p}, lockedWriter{p}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(name), tail(p.output(), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitHTTP polls url until it answers want, the process exits, or the
// deadline passes.
func waitHTTP(t *testing.T, p *proc, url string, want int, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		}
		select {
		case <-p.done:
			t.Fatalf("GET %s: the process exited (%v) before answering %d", url, p.err, want)
		case <-ctx.Done():
			t.Fatalf("GET %s: not %d within %s (last: %s)", url, want, within, last)
		case <-tick.C:
		}
	}
}

// startXfake starts the X emulator on a loopback port with extra flags
// and returns its base URL.
func startXfake(t *testing.T, flags ...string) string {
	t.Helper()
	addr := freeAddr(t)
	p := start(t, nil, bins.xfake, append([]string{"-addr", addr, "-log-level", "warn"}, flags...)...)
	waitHTTP(t, p, "http://"+addr+"/_xfake/stats", http.StatusOK, 15*time.Second)
	return "http://" + addr
}

var mediaID = regexp.MustCompile(`"media_id":\s*"([0-9]+)"`)

// upload POSTs body to a mediagw REST address and returns the status code
// and the media id when one came back.
func upload(t *testing.T, httpAddr string, body []byte, mediaType, category string) (int, string) {
	t.Helper()
	url := fmt.Sprintf("http://%s/v1/media:upload?media_type=%s&media_category=%s&total_bytes=%d", httpAddr, mediaType, category, len(body))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(bufio.NewReader(resp.Body))
	if m := mediaID.FindSubmatch(b); m != nil {
		return resp.StatusCode, string(m[1])
	}
	return resp.StatusCode, ""
}

// video is a file the emulator takes for an MP4: an ftyp box, then bytes.
func video(n int) []byte {
	b := make([]byte, n)
	copy(b, "\x00\x00\x00\x18ftypmp42")
	for i := 12; i < n; i++ {
		b[i] = byte(i * 7)
	}
	return b
}
