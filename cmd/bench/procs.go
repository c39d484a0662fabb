package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildBinaries builds cmd/xfake and cmd/mediagw of the module in root into
// dir and returns their paths.
func buildBinaries(ctx context.Context, root, dir string) (xfakeBin, mediagwBin string, err error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/xfake", "./cmd/mediagw")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return filepath.Join(dir, "xfake"), filepath.Join(dir, "mediagw"), nil
}

// moduleRoot returns the directory of the go.mod governing the working
// directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the benchmark inside the mediagw module (go run ./cmd/bench)")
	}
	return filepath.Dir(gomod), nil
}

// proc is a child process whose output is drained into a tail buffer.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu   sync.Mutex
	tail []string // last lines of output, for error messages
}

// procs tracks every running child so that all of them are stopped on exit.
var procs struct {
	sync.Mutex
	live map[*proc]bool
}

// startProc starts bin and waits until ready accepts a line of its output
// (stdout and stderr together), returning what ready extracted.
// logDir, when set, receives a copy of every child's output (-log-dir).
var logDir string

func startProc(ctx context.Context, name, bin string, args, env []string, ready func(line string) (string, bool)) (*proc, string, error) {
	cmd := exec.Command(bin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	// Own process group (a terminal's ^C reaches only the bench, which
	// stops the children itself) and SIGKILL if the bench dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	pw.Close()
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	procs.Lock()
	if procs.live == nil {
		procs.live = map[*proc]bool{}
	}
	procs.live[p] = true
	procs.Unlock()

	var logFile *os.File
	if logDir != "" {
		logFile, _ = os.CreateTemp(logDir, name+"-*.log")
	}
	found := make(chan string, 1)
	go func() {
		if logFile != nil {
			defer logFile.Close()
		}
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		matched := false
		for sc.Scan() {
			line := sc.Text()
			if logFile != nil {
				fmt.Fprintln(logFile, line)
			}
			p.mu.Lock()
			if p.tail = append(p.tail, line); len(p.tail) > 40 {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
			if !matched {
				if v, ok := ready(line); ok {
					matched = true
					found <- v
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
		pr.Close()
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()

	t := time.NewTimer(60 * time.Second)
	defer t.Stop()
	select {
	case v := <-found:
		return p, v, nil
	case <-p.done:
		err = fmt.Errorf("%s exited before it was ready: %v\n%s", name, cmd.ProcessState, p.output())
	case <-t.C:
		err = fmt.Errorf("%s not ready after 60s\n%s", name, p.output())
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.stop()
	return nil, "", err
}

// output returns the last lines the process printed.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// alive reports whether the process is still running.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, then SIGKILL after 5 s, and waits for the exit.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	procs.Lock()
	delete(procs.live, p)
	procs.Unlock()
}

// stopAll stops every child still running.
func stopAll() {
	procs.Lock()
	var list []*proc
	for p := range procs.live {
		list = append(list, p)
	}
	procs.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Go(p.stop)
	}
	wg.Wait()
}

// xfakeReady matches the emulator's "xfake listening on http://ADDR".
func xfakeReady(line string) (string, bool) {
	_, addr, ok := strings.Cut(line, "xfake listening on ")
	return strings.TrimSpace(addr), ok
}

// mediagwReady matches mediagw's JSON "mediagw serving" line and returns
// "grpcAddr httpAddr".
func mediagwReady(line string) (string, bool) {
	var l struct {
		Msg      string `json:"msg"`
		GRPCAddr string `json:"grpc_addr"`
		HTTPAddr string `json:"http_addr"`
	}
	if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "mediagw serving" {
		return "", false
	}
	return l.GRPCAddr + " " + l.HTTPAddr, true
}

// clockTicks is the unit of utime and stime in /proc/<pid>/stat.
var clockTicks = func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return float64(n)
		}
	}
	return 100
}()

// cpuTicks returns utime+stime of pid in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after "pid (comm) ": state is index 0, utime 11, stime 12.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + s, nil
}

// memKB returns a "VmRSS"- or "VmHWM"-style field of /proc/<pid>/status in KiB.
func memKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// rssSampler reads VmRSS of one process every 10 ms and keeps the peak.
type rssSampler struct {
	pid    int
	peakKB int64
	mu     sync.Mutex
	stop   chan struct{}
	wg     sync.WaitGroup
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{})}
	s.wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if kb, err := memKB(pid, "VmRSS"); err == nil {
				s.mu.Lock()
				s.peakKB = max(s.peakKB, kb)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	})
	return s
}

// finish stops sampling and returns the peak in KiB: the larger of the
// sampled VmRSS and the kernel's VmHWM (the process is fresh, so VmHWM is
// the peak of this scenario).
func (s *rssSampler) finish() int64 {
	close(s.stop)
	s.wg.Wait()
	if hwm, err := memKB(s.pid, "VmHWM"); err == nil {
		s.peakKB = max(s.peakKB, hwm)
	}
	return s.peakKB
}
