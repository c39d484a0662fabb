package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// mediagwBin is the real mediagw binary, built once for the package's
// tests (the build cache makes it quick).
var (
	mediagwOnce sync.Once
	mediagwBin  string
	mediagwErr  error
	binDir      string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func buildMediagw(t *testing.T) string {
	t.Helper()
	mediagwOnce.Do(func() {
		binDir, mediagwErr = os.MkdirTemp("", "mediagwctl-test-")
		if mediagwErr != nil {
			return
		}
		mediagwBin = filepath.Join(binDir, "mediagw")
		out, err := exec.Command("go", "build", "-o", mediagwBin, "github.com/mediagw/mediagw/cmd/mediagw").CombinedOutput()
		if err != nil {
			mediagwErr = fmt.Errorf("go build mediagw: %v\n%s", err, out)
		}
	})
	if mediagwErr != nil {
		t.Fatal(mediagwErr)
	}
	return mediagwBin
}

// stack is a real mediagw process in front of an emulator of X.
type stack struct {
	x        *xfaketest.Server
	grpcAddr string
	httpAddr string
}

// newStack starts an emulator with opts and the mediagw binary in front
// of it, and stops both when the test ends.
func newStack(t *testing.T, opts xfake.Options, args ...string) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the mediagw binary")
	}
	bin := buildMediagw(t)
	if opts.ProcessingTime == 0 {
		opts.ProcessingTime = time.Second
	}
	x := xfaketest.New(t, opts)
	grpcAddr, httpAddr, _ := runMediagw(t, bin, nil, append([]string{"--x-api-url=" + x.URL, "--x-token=T", "--segment-size=1MiB",
		"--ledger=" + filepath.Join(t.TempDir(), "ledger.db")}, args...)...)
	return &stack{x: x, grpcAddr: grpcAddr, httpAddr: httpAddr}
}

// runMediagw runs the mediagw binary on loopback ports with args (media
// checks off: the tests upload made-up bytes) and env added to the
// environment, stops it when the test ends, and returns its addresses
// once it serves.
func runMediagw(t *testing.T, bin string, env []string, args ...string) (grpcAddr, httpAddr, adminAddr string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--media-checks=off", "--grpc-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0",
		"--admin-addr=127.0.0.1:0"}, args...)...)
	cmd.Env = append(append(os.Environ(), "OTEL_TRACES_EXPORTER=none"), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := make(chan [3]string, 1)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "mediagw serving" {
				addrs <- [3]string{fmt.Sprint(m["grpc_addr"]), fmt.Sprint(m["http_addr"]), fmt.Sprint(m["admin_addr"])}
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case a := <-addrs:
		return a[0], a[1], a[2]
	case err := <-exited:
		t.Fatalf("mediagw exited: %v\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("mediagw did not report its addresses within 60s")
	}
	return "", "", ""
}

// inits is how many INITs X has seen.
func (s *stack) inits() int64 { return s.x.X.Stats().Requests["init"] }

// xRequests is how many requests X has seen in all.
func (s *stack) xRequests() int64 {
	var n int64
	for _, v := range s.x.X.Stats().Requests {
		n += v
	}
	return n
}

// ctl runs mediagwctl in-process with only the given environment and
// returns its exit code and output.
func ctl(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// jsonResults decodes --json output.
func jsonResults(t *testing.T, stdout string) []result {
	t.Helper()
	var out []result
	dec := json.NewDecoder(strings.NewReader(stdout))
	for dec.More() {
		var r result
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("stdout is not JSON objects: %v\n%s", err, stdout)
		}
		out = append(out, r)
	}
	return out
}

// writeMedia writes n bytes of seeded random data starting with magic
// and returns the path and the data's SHA-256.
func writeMedia(t *testing.T, name, magic string, n int, seed uint64) (string, string) {
	t.Helper()
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, magic)
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return p, hex.EncodeToString(sum[:])
}

const mp4Magic = "\x00\x00\x00\x18ftypmp42"

// cutProxy forwards TCP connections to target; the first connection is
// cut (reset both ways) once cutAfter bytes went from client to server.
type cutProxy struct {
	l       net.Listener
	target  string
	cutOnce atomic.Bool
	after   int64
	conns   atomic.Int64
	cuts    atomic.Int64
	wg      sync.WaitGroup
	mu      sync.Mutex
	open    []net.Conn
}

func newCutProxy(t *testing.T, target string, cutAfter int64) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, target: target, after: cutAfter}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) addr() string { return p.l.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.open = append(p.open, c, s)
		p.mu.Unlock()
		limit := int64(-1)
		if p.cutOnce.CompareAndSwap(false, true) {
			limit = p.after
		}
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			p.pipe(s, c, limit, func() { reset(c); reset(s) })
		}()
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(c, s)
			_ = c.Close()
		}()
	}
}

// pipe copies src to dst; with limit >= 0 it stops after limit bytes and
// calls cut.
func (p *cutProxy) pipe(dst, src net.Conn, limit int64, cut func()) {
	if limit < 0 {
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
		return
	}
	_, _ = io.CopyN(dst, src, limit)
	p.cuts.Add(1)
	cut()
}

// reset closes c with a TCP reset, as a dropped network does.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *cutProxy) close() {
	_ = p.l.Close()
	p.mu.Lock()
	for _, c := range p.open {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
