// Package redistest gives tests a real Redis: the one MEDIAGW_TEST_REDIS
// names (host:port, as .ci/run and make test-redis set it), or else a
// redis-server the test binary starts on a free loopback port and stops
// when it ends ([Main]). Without either, a test fails when CI is set (CI
// must test against Redis) and is skipped otherwise.
//
// Tests sharing one server keep apart through key prefixes ([Prefix]);
// nothing here flushes a database.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// EnvAddr is the variable naming a running Redis for the tests.
const EnvAddr = "MEDIAGW_TEST_REDIS"

var (
	once    sync.Once
	shared  *Server
	initErr error
	seq     atomic.Int64
)

// Main runs the tests and stops the redis-server they started, if any:
// call it from TestMain as os.Exit(redistest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	return code
}

// Addr returns host:port of a Redis for t (see the package doc).
func Addr(t testing.TB) string {
	t.Helper()
	if a := os.Getenv(EnvAddr); a != "" {
		return a
	}
	once.Do(func() {
		dir, err := os.MkdirTemp("", "redistest-")
		if err != nil {
			initErr = err
			return
		}
		shared, initErr = start(dir, false)
	})
	if initErr != nil {
		unavailable(t, initErr)
	}
	return shared.Addr
}

// URL is a redis:// URL of Addr's server.
func URL(t testing.TB) string { return "redis://" + Addr(t) + "/0" }

// Prefix returns a key prefix no other test of any process uses.
func Prefix(t testing.TB) string {
	return fmt.Sprintf("mediagwtest:%d:%d:%d:", os.Getpid(), time.Now().UnixNano(), seq.Add(1))
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("these tests need Redis: set %s or install redis-server (CI is set, so no skipping): %v", EnvAddr, err)
	}
	t.Skipf("no Redis: set %s or install redis-server (%v)", EnvAddr, err)
}

// Server is a redis-server a test started.
type Server struct {
	Addr string
	Dir  string
	aof  bool
	port int
	cmd  *exec.Cmd
	exit chan struct{}
}

// Start runs a redis-server of t's own on a free loopback port, with its
// files in a temporary directory; with aof, every write is fsynced to an
// append-only file, so that a restart keeps the data. It stops when t
// ends.
func Start(t testing.TB, aof bool) *Server {
	t.Helper()
	s, err := start(t.TempDir(), aof)
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(s.stop)
	return s
}

func start(dir string, aof bool) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, aof: aof, port: port}
		if lastErr = s.run(bin); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// run starts the server on s's port and waits until it answers.
func (s *Server) run(bin string) error {
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.Dir,
		"--save", "", "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning",
		"--logfile", filepath.Join(s.Dir, "redis.log")}
	if s.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	s.cmd = exec.Command(bin, args...)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exit = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exit) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ping(s.Addr) == nil {
			return nil
		}
		select {
		case <-s.exit:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, strings.TrimSpace(string(log)))
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.stop()
	return fmt.Errorf("redis-server on port %d did not answer within 10s", s.port)
}

// ping sends PING in the inline protocol and expects PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Stop shuts the server down (SIGTERM: with aof, everything written is on
// disk) and waits for it.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stop()
}

func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exit:
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exit:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exit
	}
}

// Restart starts the server again on the same port and directory.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if err = s.run(bin); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("restarting redis-server: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
