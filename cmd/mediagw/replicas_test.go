package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mediagw/mediagw/service/redisstore/redistest"
)

// TestMain stops the redis-server the tests started, if any.
func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// rateToken is the X token of the rate-limit scenario: xfake keeps its
// windows per token, so the other scenarios do not spend this one.
const rateToken = "rate-limited-token"

// TestReplicas runs three real mediagw processes on one real Redis in
// front of one cmd/xfake, and checks what operators rely on when they run
// several replicas: an upload survives the replica driving it, one STATUS
// poller serves every watcher, what one replica knows (an image's state,
// X's rate limits) the others know, and Redis going away and coming back
// corrupts nothing.
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs mediagw, xfake and redis-server")
	}
	const ttl = 2 * time.Second
	c := newCluster(t, 3, ttl, "--token="+testToken+","+rateToken, "--processing-time=3s",
		"--rate-limit=status=20/4s")
	t.Run("an image uploaded through one replica is SUCCEEDED through the others", func(t *testing.T) {
		c.t = t
		before := c.stats().Requests["status"]
		data := media("image/png", 50<<10, 81)
		code, m, err := c.upload(c.reps[0], "media_type=image/png", bytes.NewReader(data), int64(len(data)))
		id, _ := m["media_id"].(string)
		if err != nil || code != http.StatusOK || id == "" {
			t.Fatalf("image upload: HTTP %d %v %v", code, m, err)
		}
		var st map[string]any
		if code := c.getJSON("http://"+c.reps[1].http+"/v1/media/"+id+"/status", &st); code != http.StatusOK || st["state"] != "PROCESSING_STATE_SUCCEEDED" {
			t.Fatalf("GetStatus through %s: HTTP %d %v", c.reps[1].name, code, st)
		}
		seq, err := watchREST(c.reps[2], id)
		if err != nil || !slices.Equal(seq, []string{"PROCESSING_STATE_SUCCEEDED 100"}) {
			t.Fatalf("watch through %s: %v %v", c.reps[2].name, seq, err)
		}
		if n := c.stats().Requests["status"] - before; n != 0 {
			t.Fatalf("%d STATUS calls reached X for an image", n)
		}
	})
	t.Run("SIGKILL of the replica driving an upload: interrupted within the lease TTL, resumed through another", func(t *testing.T) {
		c.t = t
		c.killAndResume(ttl)
	})
	t.Run("30 watchers on three replicas cost X one poller's STATUS calls", func(t *testing.T) {
		c.t = t
		c.watchers(30)
	})
	t.Run("the polling replica dies: a replica with watchers takes the poll over", func(t *testing.T) {
		c.t = t
		c.pollerDies()
	})
	t.Run("a 429 seen by one replica makes the others wait for the reset", func(t *testing.T) {
		c.t = t
		c.rateLimit(20)
	})
	t.Run("Redis restarted: readiness flips and recovers, nothing is corrupted", func(t *testing.T) {
		c.t = t
		c.redisRestart()
	})
}

func (c *cluster) killAndResume(ttl time.Duration) {
	t := c.t
	inits := c.stats().Requests["init"]
	data := media("video/mp4", 4<<20, 82)
	const key = "replica-kill"
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, _, err := c.upload(c.reps[0], "media_type=video/mp4&idempotency_key="+key, pr, int64(len(data)))
		done <- err
	}()
	go func() {
		for off := 0; off < 2<<20; off += 64 << 10 {
			if _, err := pw.Write(data[off : off+64<<10]); err != nil {
				return
			}
		}
	}()
	var reported int64
	waitFor(t, func() bool {
		code, st := c.getUpload(c.reps[1], key)
		reported = committed(st)
		return code == http.StatusOK && st["phase"] == "UPLOAD_PHASE_RECEIVING" && reported >= 1<<20
	})
	c.kill(c.reps[0])
	killed := time.Now()
	_ = pw.CloseWithError(io.ErrClosedPipe)
	<-done
	var st map[string]any
	eventually(t, 5*ttl, "INTERRUPTED after the kill", func() bool {
		var code int
		code, st = c.getUpload(c.reps[1], key)
		return code == http.StatusOK && st["phase"] == "UPLOAD_PHASE_INTERRUPTED"
	})
	took := time.Since(killed)
	t.Logf("INTERRUPTED through %s %s after the SIGKILL (lease TTL %s); %d bytes committed", c.reps[1].name, took.Round(time.Millisecond), ttl, committed(st))
	// The lease expires at most a TTL after its last renewal, which was
	// before the kill; the margin is for polling and scheduling.
	if took > ttl+time.Second {
		t.Fatalf("INTERRUPTED only %s after the kill; the lease TTL is %s", took, ttl)
	}
	off := committed(st)
	if off < reported || off%(64<<10) != 0 {
		t.Fatalf("committed %d after the kill; %d was reported before it", off, reported)
	}
	code, m, err := c.upload(c.reps[2], fmt.Sprintf("media_type=video/mp4&idempotency_key=%s&resume_offset=%d", key, off),
		bytes.NewReader(data[off:]), int64(len(data))-off)
	if err != nil || code != http.StatusOK || m["media_id"] != st["media_id"] {
		t.Fatalf("resume through %s: HTTP %d %v %v (interrupted media %v)", c.reps[2].name, code, m, err, st["media_id"])
	}
	c.stored(m["media_id"].(string), data)
	if n := c.stats().Requests["init"] - inits; n != 1 {
		t.Fatalf("X saw %d INITs for the upload and its resume, want 1", n)
	}
	c.start(c.reps[0])
}

func (c *cluster) watchers(n int) {
	t := c.t
	// One watcher: what one poller costs.
	id := c.uploadVideo(c.reps[0], 83)
	before := c.stats().Requests["status"]
	one, err := watchREST(c.reps[1], id)
	if err != nil || !strings.HasPrefix(one[len(one)-1], "PROCESSING_STATE_SUCCEEDED") {
		t.Fatalf("one watcher: %v %v", one, err)
	}
	single := c.stats().Requests["status"] - before
	// n watchers spread over the replicas.
	id = c.uploadVideo(c.reps[0], 84)
	before = c.stats().Requests["status"]
	seqs := make([][]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seqs[i], errs[i] = watchREST(c.reps[i%len(c.reps)], id)
		}()
	}
	wg.Wait()
	many := c.stats().Requests["status"] - before
	longest := seqs[0]
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("watcher %d: %v (after %v)", i, errs[i], seqs[i])
		}
		if len(seqs[i]) > len(longest) {
			longest = seqs[i]
		}
	}
	for i, s := range seqs {
		// A watcher that joined later starts further on; from then on
		// every watcher saw the same states in the same order.
		if len(s) == 0 || !slices.Equal(s, longest[len(longest)-len(s):]) || !strings.HasPrefix(s[len(s)-1], "PROCESSING_STATE_SUCCEEDED") {
			t.Fatalf("watcher %d on %s saw %v; the longest sequence is %v", i, c.reps[i%len(c.reps)].name, s, longest)
		}
	}
	t.Logf("one watcher: %d STATUS calls (%v); %d watchers on %d replicas: %d STATUS calls (%v)", single, one, n, len(c.reps), many, longest)
	// The poller's timing has jitter: one call more is the same poller.
	if many > single+1 || many < 1 {
		t.Fatalf("%d watchers cost %d STATUS calls, one watcher %d", n, many, single)
	}
}

func (c *cluster) pollerDies() {
	t := c.t
	id := c.uploadVideo(c.reps[1], 88)
	// The first watcher makes replica a the poller; once it has X's first
	// answer, watchers on b and c follow a's changes.
	first := make(chan struct{})
	go func() {
		res, err := http.Get("http://" + c.reps[0].http + "/v1/media/" + id + "/status:watch")
		if err == nil {
			_, _ = res.Body.Read(make([]byte, 1))
			close(first)
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}()
	select {
	case <-first:
	case <-time.After(15 * time.Second):
		t.Fatal("the first watcher got nothing within 15s")
	}
	seqs := make([][]string, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range seqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seqs[i], errs[i] = watchREST(c.reps[1+i%2], id)
		}()
	}
	// The four watches are in place on b and c before a dies.
	waitFor(t, func() bool {
		n := 0.0
		for _, r := range c.reps[1:3] {
			res, err := http.Get("http://" + r.admin + "/metrics")
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			v, _ := metricValue(string(b), "mediagw_status_watchers")
			n += v
		}
		return n == 4
	})
	c.kill(c.reps[0])
	wg.Wait()
	for i, s := range seqs {
		if errs[i] != nil || len(s) == 0 || !strings.HasPrefix(s[len(s)-1], "PROCESSING_STATE_SUCCEEDED") {
			t.Fatalf("watcher %d on %s after the poller died: %v %v", i, c.reps[1+i%2].name, s, errs[i])
		}
		if !consistent(s, seqs[0]) {
			t.Fatalf("watchers saw different sequences: %v and %v", s, seqs[0])
		}
	}
	t.Logf("after the poller's SIGKILL the watchers on the other replicas saw %v", seqs[0])
	c.start(c.reps[0])
}

// consistent reports whether the shorter of two watch sequences ends the
// longer: a watcher that joined later starts further on.
func consistent(a, b []string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	return slices.Equal(a, b[len(b)-len(a):])
}

func (c *cluster) rateLimit(limit int) {
	t := c.t
	const unknown = "1234567890123456789" // STATUS counts against the window whatever the media
	limited := c.stats().RateLimited
	// Spend the token's window at X behind mediagw's back: no replica
	// knows it is used up.
	for i := range limit {
		req, _ := http.NewRequest(http.MethodGet, c.xURL+"/2/media/upload?media_id="+unknown, nil)
		req.Header.Set("Authorization", "Bearer "+rateToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("request %d of a window of %d was already limited", i+1, limit)
		}
	}
	status := func(r *replica, out chan<- string) {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodGet, "http://"+r.http+"/v1/media/"+unknown+"/status", nil)
		req.Header.Set("X-Access-Token", rateToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- err.Error()
			return
		}
		res.Body.Close()
		out <- fmt.Sprintf("%s: HTTP %d after %s", r.name, res.StatusCode, time.Since(start).Round(10*time.Millisecond))
	}
	results := make(chan string, len(c.reps))
	go status(c.reps[0], results)
	// The first replica runs into X's 429 and records the window's reset.
	waitFor(t, func() bool { return c.stats().RateLimited == limited+1 })
	rdb := redis.NewClient(&redis.Options{Addr: c.redis.Addr})
	defer rdb.Close()
	waitFor(t, func() bool {
		keys, _ := rdb.Keys(context.Background(), "mediagw:rl:*|status").Result()
		for _, k := range keys {
			if v, _ := rdb.HGet(context.Background(), k, "remaining").Result(); v == "0" {
				return true
			}
		}
		return false
	})
	for _, r := range c.reps[1:] {
		go status(r, results)
	}
	var got []string
	for range c.reps {
		got = append(got, <-results)
	}
	t.Logf("after the window was spent: %v", got)
	for _, g := range got {
		if !strings.Contains(g, "HTTP 404") {
			t.Fatalf("%s; want every call through once the window reset (404: X does not know the media)", g)
		}
	}
	if n := c.stats().RateLimited - limited; n != 1 {
		t.Fatalf("X answered 429 %d times; the replicas that knew of the first should have waited for the reset", n)
	}
}

func (c *cluster) redisRestart() {
	t := c.t
	data := media("video/mp4", 4<<20, 85)
	const key = "replica-redis"
	inits := c.stats().Requests["init"]
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, _, err := c.upload(c.reps[1], "media_type=video/mp4&idempotency_key="+key, pr, int64(len(data)))
		done <- err
	}()
	go func() {
		for off := 0; off < 2<<20; off += 64 << 10 {
			if _, err := pw.Write(data[off : off+64<<10]); err != nil {
				return
			}
		}
	}()
	var reported int64
	waitFor(t, func() bool {
		code, st := c.getUpload(c.reps[2], key)
		reported = committed(st)
		return code == http.StatusOK && reported >= 1<<20
	})
	c.redis.Stop(t)
	down := c.waitAll("reported NOT_SERVING", func(r *replica) bool {
		return c.serving(r) == healthpb.HealthCheckResponse_NOT_SERVING && !c.ready(r)
	})
	t.Logf("every replica NOT_SERVING (gRPC health and /readyz) %s after Redis stopped", down.Round(time.Millisecond))
	small := media("video/mp4", 100<<10, 86)
	code, m, err := c.upload(c.reps[0], "media_type=video/mp4", bytes.NewReader(small), int64(len(small)))
	if err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("a new upload while Redis is down: HTTP %d %v %v", code, m, err)
	}
	if n := c.stats().Requests["init"] - inits; n != 1 {
		t.Fatalf("X saw %d INITs; the upload refused while Redis was down must not reach it", n)
	}
	c.redis.Restart(t)
	up := c.waitAll("came back to SERVING", func(r *replica) bool {
		return c.serving(r) == healthpb.HealthCheckResponse_SERVING && c.ready(r)
	})
	t.Logf("every replica SERVING again %s after Redis restarted", up.Round(time.Millisecond))
	_ = pw.CloseWithError(io.ErrClosedPipe)
	<-done
	var st map[string]any
	waitFor(t, func() bool {
		var code int
		code, st = c.getUpload(c.reps[0], key)
		return code == http.StatusOK && st["phase"] == "UPLOAD_PHASE_INTERRUPTED"
	})
	off := committed(st)
	t.Logf("reported %d bytes committed before Redis stopped; the ledger says %d after", reported, off)
	if off < reported {
		t.Fatalf("the ledger lost committed progress: %d after the restart, %d reported before", off, reported)
	}
	code, m, err = c.upload(c.reps[0], fmt.Sprintf("media_type=video/mp4&idempotency_key=%s&resume_offset=%d", key, off),
		bytes.NewReader(data[off:]), int64(len(data))-off)
	if err != nil || code != http.StatusOK || m["media_id"] != st["media_id"] {
		t.Fatalf("resume after the restart: HTTP %d %v %v", code, m, err)
	}
	c.stored(m["media_id"].(string), data)
	if code, fin := c.getUpload(c.reps[2], key); code != http.StatusOK || fin["phase"] != "UPLOAD_PHASE_COMPLETED" {
		t.Fatalf("after the resume: HTTP %d %v", code, fin)
	}
	// And the replicas take new uploads again.
	c.uploadVideo(c.reps[2], 87)
}
