package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mediagw/mediagw/service/redisstore/redistest"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// cluster is several real mediagw processes on one real Redis, in front
// of one standalone cmd/xfake: what operators run behind a load balancer.
type cluster struct {
	t        *testing.T
	bin      string
	redis    *redistest.Server
	xURL     string
	leaseTTL time.Duration
	reps     []*replica
	// extra are flags every replica gets after the defaults; flagsFor,
	// when set, adds flags of one replica after them.
	extra    []string
	flagsFor func(r *replica) []string
}

// replica is one mediagw process; it keeps its ports across restarts.
type replica struct {
	name              string
	grpc, http, admin string
	cmd               *exec.Cmd
	exited            chan struct{}
	logs              *syncBuffer
	conn              *grpc.ClientConn
	health            healthpb.HealthClient
}

var (
	xfakeOnce sync.Once
	xfakeBin  string
	xfakeErr  error
)

// binaries builds mediagw and cmd/xfake once per test binary.
func binaries(t *testing.T) (mediagw, xf string) {
	t.Helper()
	mediagw = binary(t)
	xfakeOnce.Do(func() {
		xfakeBin = filepath.Join(filepath.Dir(mediagw), "xfake")
		if out, err := exec.Command("go", "build", "-o", xfakeBin, "../xfake").CombinedOutput(); err != nil {
			xfakeErr = fmt.Errorf("go build ../xfake: %v\n%s", err, out)
		}
	})
	if xfakeErr != nil {
		t.Fatal(xfakeErr)
	}
	return mediagw, xfakeBin
}

// startXfake runs cmd/xfake with args and returns its URL.
func startXfake(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--addr=127.0.0.1:0"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "xfake listening on "); ok {
				urls <- u
			}
		}
	}()
	select {
	case u := <-urls:
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("xfake did not say where it listens within 30s")
	}
	return ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newCluster starts Redis (append-only, so that a restart keeps the data),
// xfake with xargs, and n mediagw replicas.
func newCluster(t *testing.T, n int, leaseTTL time.Duration, xargs ...string) *cluster {
	t.Helper()
	return newClusterWith(t, n, leaseTTL, nil, xargs...)
}

// newClusterWith is newCluster with setup called before the replicas start
// (to set extra flags, or put something between them and xfake).
func newClusterWith(t *testing.T, n int, leaseTTL time.Duration, setup func(*cluster), xargs ...string) *cluster {
	t.Helper()
	bin, xbin := binaries(t)
	c := &cluster{t: t, bin: bin, redis: redistest.Start(t, true), leaseTTL: leaseTTL}
	c.xURL = startXfake(t, xbin, xargs...)
	if setup != nil {
		setup(c)
	}
	for i := range n {
		r := &replica{name: fmt.Sprintf("replica-%c", 'a'+i), grpc: freeAddr(t), http: freeAddr(t), admin: freeAddr(t)}
		c.reps = append(c.reps, r)
		c.start(r)
		conn, err := grpc.NewClient(r.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		r.conn, r.health = conn, healthpb.NewHealthClient(conn)
		t.Cleanup(func() { _ = conn.Close() })
	}
	t.Cleanup(func() {
		for _, r := range c.reps {
			c.kill(r)
			if t.Failed() {
				t.Logf("%s logs:\n%s", r.name, r.logs.String())
			}
		}
	})
	return c
}

// start runs replica r and waits until it is ready.
func (c *cluster) start(r *replica) {
	c.t.Helper()
	r.cmd = exec.Command(c.bin, "--media-checks=off", "--grpc-addr="+r.grpc, "--http-addr="+r.http, "--admin-addr="+r.admin,
		"--x-api-url="+c.xURL, "--x-token="+testToken, "--segment-size=64KiB",
		"--ledger=redis://"+c.redis.Addr+"/0", "--lease-ttl="+c.leaseTTL.String(),
		"--rate-limit-wait=30s", "--log-level=debug", "--drain-timeout=2s")
	r.cmd.Args = append(r.cmd.Args, c.extra...)
	if c.flagsFor != nil {
		r.cmd.Args = append(r.cmd.Args, c.flagsFor(r)...)
	}
	if r.logs == nil {
		r.logs = &syncBuffer{}
	}
	fmt.Fprintf(r.logs, "--- %s starts\n", r.name)
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(r.cmd, r.exited)
	eventually(c.t, 30*time.Second, r.name+" ready", func() bool {
		select {
		case <-r.exited:
			c.t.Fatalf("%s exited:\n%s", r.name, r.logs.String())
		default:
		}
		return c.ready(r)
	})
}

// kill ends replica r with SIGKILL: no drain, no release of its leases.
func (c *cluster) kill(r *replica) {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
}

// ready reports whether r's GET /readyz (on its admin port) answers 200.
func (c *cluster) ready(r *replica) bool {
	res, err := http.Get("http://" + r.admin + "/readyz")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// serving is r's gRPC health for the whole server.
func (c *cluster) serving(r *replica) healthpb.HealthCheckResponse_ServingStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := r.health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return res.GetStatus()
}

// waitAll waits until cond holds for every replica.
func (c *cluster) waitAll(what string, cond func(*replica) bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	eventually(c.t, 30*time.Second, "every replica "+what, func() bool {
		for _, r := range c.reps {
			if !cond(r) {
				return false
			}
		}
		return true
	})
	return time.Since(start)
}

// stats reads the emulator's counters.
func (c *cluster) stats() xfake.Stats {
	c.t.Helper()
	var s xfake.Stats
	c.getJSON(c.xURL+"/_xfake/stats", &s)
	return s
}

// stored asserts X assembled exactly data for media id.
func (c *cluster) stored(id string, data []byte) {
	c.t.Helper()
	var info xfake.MediaInfo
	c.getJSON(c.xURL+"/_xfake/media/"+id, &info)
	if info.SHA256 != sum(data) || info.Size != int64(len(data)) {
		c.t.Fatalf("media %s at X: sha256 %s size %d; want %s size %d", id, info.SHA256, info.Size, sum(data), len(data))
	}
}

func (c *cluster) getJSON(url string, v any) int {
	c.t.Helper()
	res, err := http.Get(url)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		c.t.Fatalf("GET %s: HTTP %d, %v", url, res.StatusCode, err)
	}
	return res.StatusCode
}

// upload POSTs body to r's REST upload with the query q and returns the
// HTTP status and the decoded JSON answer.
func (c *cluster) upload(r *replica, q string, body io.Reader, size int64) (int, map[string]any, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+r.http+"/v1/media:upload?"+q, body)
	if err != nil {
		return 0, nil, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		return res.StatusCode, nil, fmt.Errorf("answer %q: %v", b, err)
	}
	return res.StatusCode, m, nil
}

// getUpload is GET /v1/uploads/{key} on r.
func (c *cluster) getUpload(r *replica, key string) (int, map[string]any) {
	res, err := http.Get("http://" + r.http + "/v1/uploads/" + key)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// committed reads committed_bytes of an UploadState in JSON (an int64,
// so a string).
func committed(m map[string]any) int64 {
	var n int64
	switch v := m["committed_bytes"].(type) {
	case string:
		_, _ = fmt.Sscan(v, &n)
	case float64:
		n = int64(v)
	}
	return n
}

// watchREST follows r's NDJSON watch of id and returns the states it
// sent, as "STATE progress".
func watchREST(r *replica, id string) ([]string, error) {
	res, err := http.Get("http://" + r.http + "/v1/media/" + id + "/status:watch")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return nil, fmt.Errorf("HTTP %d: %s", res.StatusCode, b)
	}
	var seq []string
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		var line struct {
			Result *struct {
				State    string `json:"state"`
				Progress int    `json:"progress_percent"`
			} `json:"result"`
			Error any `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Result == nil {
			return seq, fmt.Errorf("line %q", sc.Text())
		}
		seq = append(seq, fmt.Sprintf("%s %d", line.Result.State, line.Result.Progress))
	}
	return seq, sc.Err()
}

// uploadVideo uploads a small video through r and returns its media id.
func (c *cluster) uploadVideo(r *replica, seed uint64) string {
	c.t.Helper()
	data := media("video/mp4", 200<<10, seed)
	code, m, err := c.upload(r, "media_type=video/mp4", bytes.NewReader(data), int64(len(data)))
	id, _ := m["media_id"].(string)
	if err != nil || code != http.StatusOK || id == "" {
		c.t.Fatalf("upload through %s: HTTP %d %v %v", r.name, code, m, err)
	}
	return id
}
