package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// perfRecorder samples call stacks of one process with Linux perf
// (perf record -g -p PID) while a scenario's runs go on; mediagw has no
// pprof endpoint, and perf sees its kernel time too. Read the result with
// `perf report -i FILE --no-children` or `perf script`.
type perfRecorder struct {
	cmd  *exec.Cmd
	file string
}

// startPerf starts perf for pid, writing dir/name.perf.data. It returns nil
// (and logs why) when perf cannot run.
func startPerf(dir, name string, pid int) *perfRecorder {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		logf("perf: %v", err)
		return nil
	}
	file := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(name)+".perf.data")
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", file)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf("perf: %v", err)
		return nil
	}
	time.Sleep(200 * time.Millisecond) // let perf attach
	return &perfRecorder{cmd: cmd, file: file}
}

// stop ends the recording and waits for perf to write its file.
func (r *perfRecorder) stop() {
	if r == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case <-done:
		logf("perf: wrote %s", r.file)
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
		logf("perf: killed, %s may be incomplete", r.file)
	}
}

// perfName names a recording after its scenario and path.
func perfName(sc scenario, mode string) string {
	return fmt.Sprintf("%s-%s", sc.Name, mode)
}
