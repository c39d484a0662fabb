package client_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// redisAddr returns the Redis of the tests: MEDIAGW_TEST_REDIS (as .ci/run
// sets it), or one .ci/redis starts for this test. Without Redis the test
// is skipped, unless CI is set.
func redisAddr(t *testing.T) string {
	t.Helper()
	if a := os.Getenv("MEDIAGW_TEST_REDIS"); a != "" {
		return a
	}
	script, _ := filepath.Abs("../../.ci/redis")
	dir := t.TempDir()
	out, err := exec.Command("bash", script, "start", dir).Output()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the replica test needs Redis (CI is set, so no skipping): .ci/redis start: %v", err)
		}
		t.Skipf("no Redis: set MEDIAGW_TEST_REDIS or install redis-server (.ci/redis start: %v)", err)
	}
	t.Cleanup(func() { _ = exec.Command("bash", script, "stop", dir).Run() })
	return strings.TrimSpace(string(out))
}

// TestReplicaSwitch: two mediagw replicas share one Redis; the client
// reaches them through one address. The replica driving the upload dies
// (SIGKILL) and the address leads to the other: the client resumes there
// by itself, with one INIT at X.
func TestReplicaSwitch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs mediagw, xfake and Redis")
	}
	redis := redisAddr(t)
	x := startXfake(t, "--bandwidth=4MiB")
	args := []string{"--x-api-url=" + x.xURL, "--x-token=T", "--segment-size=256KiB",
		"--ledger=redis://" + redis + "/0", "--lease-ttl=1s"}
	a, _ := startMediagw(t, args...)
	b, _ := startMediagw(t, args...)
	p := newProxy(t, a.grpcAddr)
	c := newClient(t, p.addr(), false)
	const size = 6 << 20
	data := mp4(size, uint64(time.Now().UnixNano()))
	u := uploadPastHalf(t, c, data, "the replica died")
	a.kill()
	p.target.Store(b.grpcAddr)
	p.resetAll()
	o := u.wait(t, "the switch")
	resumedAt := u.resumedAt
	if o.err != nil {
		t.Fatal(o.err)
	}
	if n, sha := xMedia(t, x, o.res.MediaID); n != size || sha != sum(data) {
		t.Fatalf("X holds %d bytes, sha256 %s; want %d, %s", n, sha, size, sum(data))
	}
	if s := xStats(t, x); s["init"] != 1 || s["finalize"] != 1 {
		t.Fatalf("X saw %d INITs and %d FINALIZEs, want 1 each", s["init"], s["finalize"])
	}
	if resumedAt.Load() <= 0 {
		t.Fatalf("the upload did not resume past 0 (%d resumes)", o.res.Resumes)
	}
	t.Logf("resumed on the second replica at %d of %d after %d resumes", resumedAt.Load(), size, o.res.Resumes)
}
