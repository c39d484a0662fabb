package client_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The examples' mediagw: a real process on the built-in emulator, started
// by TestMain.
var (
	// mediagwAddr is the examples' mediagw (gRPC).
	mediagwAddr string
	// mediagwURL is its REST base URL.
	mediagwURL string
	// clipPath is a 3 MB MP4-looking file the examples upload.
	clipPath string
)

var (
	binDir     string
	mediagwBin string
	xfakeBin   string
	// inspect is the HTTP client of the emulator's inspection endpoints.
	inspect = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse() // the examples run in -short mode too: they need mediagw
	var err error
	if binDir, err = os.MkdirTemp("", "mediagw-client-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	mediagwBin, xfakeBin = filepath.Join(binDir, "mediagw"), filepath.Join(binDir, "xfake")
	for bin, pkg := range map[string]string{mediagwBin: "github.com/mediagw/mediagw/cmd/mediagw", xfakeBin: "github.com/mediagw/mediagw/cmd/xfake"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	clipPath = filepath.Join(binDir, "clip.mp4")
	if err := os.WriteFile(clipPath, mp4(3_000_000, 1), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p, err := startMediagw(nil, "--emulator", "--ledger="+filepath.Join(binDir, "ledger.db"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mediagwAddr, mediagwURL = p.grpcAddr, "http://"+p.httpAddr
	code := m.Run()
	p.kill()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}

// mp4 returns n bytes that start as an MP4 file, the rest random from
// seed.
func mp4(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// proc is a mediagw or xfake process.
type proc struct {
	cmd      *exec.Cmd
	args     []string
	grpcAddr string
	httpAddr string
	xURL     string // xfake's URL
	logs     *syncBuffer
	exited   chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startMediagw runs mediagw with args on loopback ports (unless args name
// them) and waits for its "mediagw serving" line. With t, it is killed
// when the test ends.
func startMediagw(t *testing.T, args ...string) (*proc, error) {
	// The tests upload made-up bytes of the right type: media checks off.
	full := []string{"--grpc-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0", "--admin-addr=127.0.0.1:0", "--media-checks=off"}
	p := &proc{args: append(full, args...)}
	err := p.start(mediagwBin, func(line string) bool {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "mediagw serving" {
			p.grpcAddr, _ = m["grpc_addr"].(string)
			p.httpAddr, _ = m["http_addr"].(string)
			return true
		}
		return false
	})
	if t != nil {
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			p.kill()
			if t.Failed() {
				t.Logf("mediagw %v logs:\n%s", p.args, p.logs.String())
			}
		})
	}
	return p, err
}

// restart runs the killed process again with the same arguments, on the
// same ports.
func (p *proc) restart(t *testing.T) {
	t.Helper()
	args := []string{}
	for _, a := range p.args {
		switch {
		case strings.HasPrefix(a, "--grpc-addr="):
			a = "--grpc-addr=" + p.grpcAddr
		case strings.HasPrefix(a, "--http-addr="):
			a = "--http-addr=" + p.httpAddr
		}
		args = append(args, a)
	}
	p.args = args
	if err := p.start(mediagwBin, func(line string) bool { return strings.Contains(line, `"mediagw serving"`) }); err != nil {
		t.Fatal(err)
	}
}

// startXfake runs the emulator with args and waits until it listens.
func startXfake(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{args: append([]string{"--addr=127.0.0.1:0", "--token=T", "--processing-time=1s"}, args...)}
	err := p.start(xfakeBin, func(line string) bool {
		if u, ok := strings.CutPrefix(line, "xfake listening on "); ok {
			p.xURL = strings.TrimSpace(u)
			return true
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	return p
}

func (p *proc) start(bin string, ready func(line string) bool) error {
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none")
	if p.logs == nil {
		p.logs = &syncBuffer{}
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		return err
	}
	p.exited = make(chan struct{})
	up := make(chan struct{})
	go func(exited chan struct{}) {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := false
		for sc.Scan() {
			_, _ = p.logs.Write(append(sc.Bytes(), '\n'))
			if !once && ready(sc.Text()) {
				once = true
				close(up)
			}
		}
		_ = p.cmd.Wait()
		close(exited)
	}(p.exited)
	select {
	case <-up:
		return nil
	case <-p.exited:
		return fmt.Errorf("%s exited:\n%s", filepath.Base(bin), p.logs.String())
	case <-time.After(60 * time.Second):
		p.kill()
		return fmt.Errorf("%s did not start within 60s", filepath.Base(bin))
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stack is a mediagw in front of its own xfake process.
type stack struct {
	x *proc
	m *proc
}

func newStack(t *testing.T, xargs []string, margs ...string) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("runs mediagw and xfake")
	}
	x := startXfake(t, xargs...)
	m, _ := startMediagw(t, append([]string{"--x-api-url=" + x.xURL, "--x-token=T", "--segment-size=256KiB",
		"--ledger=" + filepath.Join(t.TempDir(), "ledger.db")}, margs...)...)
	return &stack{x: x, m: m}
}

// xStats returns the emulator's request counters.
func xStats(t *testing.T, x *proc) map[string]int64 {
	t.Helper()
	var st struct {
		Requests map[string]int64 `json:"requests"`
	}
	getJSON(t, x.xURL+"/_xfake/stats", &st)
	return st.Requests
}

// xMedia returns the size and SHA-256 of the media X holds.
func xMedia(t *testing.T, x *proc, id string) (int64, string) {
	t.Helper()
	var m struct {
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	getJSON(t, x.xURL+"/_xfake/media/"+id, &m)
	return m.Size, m.SHA256
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := inspect.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// proxy forwards loopback TCP connections to a target it can switch, and
// resets connections after a planned number of bytes from the client.
type proxy struct {
	l      net.Listener
	target atomic.Value // string
	mu     sync.Mutex
	cuts   []int64 // bytes after which the next connections are reset
	conns  map[net.Conn]bool
	cut    atomic.Int64 // connections reset
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, conns: map[net.Conn]bool{}}
	p.target.Store(target)
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

// plan makes the next connections reset after the given byte counts from
// the client, one count per connection.
func (p *proxy) plan(cuts ...int64) {
	p.mu.Lock()
	p.cuts = append(p.cuts[:0], cuts...)
	p.mu.Unlock()
}

// resetAll resets every open connection (a replica's death).
func (p *proxy) resetAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		reset(c)
	}
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		limit := int64(-1)
		if len(p.cuts) > 0 {
			limit, p.cuts = p.cuts[0], p.cuts[1:]
		}
		p.mu.Unlock()
		up, err := net.Dial("tcp", p.target.Load().(string))
		if err != nil {
			reset(c)
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		var once sync.Once
		cut := func() {
			once.Do(func() {
				p.cut.Add(1)
				reset(c)
				reset(up)
			})
		}
		p.wg.Add(2)
		go p.pipe(up, c, limit, cut)
		go p.pipe(c, up, -1, cut)
	}
}

func (p *proxy) pipe(dst, src net.Conn, limit int64, cut func()) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, src)
		p.mu.Unlock()
		_ = dst.Close()
		_ = src.Close()
	}()
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if limit >= 0 && n+int64(k) > limit {
				_, _ = dst.Write(buf[:limit-n])
				cut()
				return
			}
			n += int64(k)
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *proxy) close() {
	_ = p.l.Close()
	p.resetAll()
	p.wg.Wait()
}
