package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// binary builds the mediagw binary once per test process.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mediagw-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "mediagw")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

// proc is a mediagw process.
type proc struct {
	t                  *testing.T
	cmd                *exec.Cmd
	grpcAddr, httpAddr string
	client             mediagwv1.MediaUploadServiceClient
	exited             chan error
	logs               *syncBuffer
	nonJSON            atomic.Int64 // stdout lines that are not JSON
	stderr             bytes.Buffer
}

// startProc runs the mediagw binary with args (after loopback listen
// addresses) and waits until it serves.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, exited: make(chan error, 1), logs: &syncBuffer{}}
	p.cmd = exec.Command(binary(t), append([]string{"--media-checks=off", "--grpc-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0", "--admin-addr=127.0.0.1:0"}, args...)...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			_, _ = p.logs.Write(append(sc.Bytes(), '\n'))
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				p.nonJSON.Add(1)
			}
			if m["msg"] == "mediagw serving" {
				g, _ := m["grpc_addr"].(string)
				h, _ := m["http_addr"].(string)
				serving <- [2]string{g, h}
			}
		}
		p.exited <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("mediagw (pid %d) logs:\n%s%s", p.cmd.Process.Pid, p.logs.String(), p.stderr.String())
		}
	})
	select {
	case a := <-serving:
		p.grpcAddr, p.httpAddr = a[0], a[1]
	case err := <-p.exited:
		t.Fatalf("mediagw exited: %v\n%s", err, p.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("mediagw did not serve within 60s")
	}
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	p.client = mediagwv1.NewMediaUploadServiceClient(conn)
	return p
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill() {
	p.t.Helper()
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.t.Fatal("mediagw did not die after SIGKILL")
	}
}
