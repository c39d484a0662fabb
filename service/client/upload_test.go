package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/client"
)

// fastRetry retries quickly and often: the tests' servers come back at
// once.
var fastRetry = client.RetryPolicy{MaxRetries: 30, MaxElapsed: 2 * time.Minute, Initial: 20 * time.Millisecond,
	Max: 500 * time.Millisecond, Multiplier: 1.6, Jitter: 0.5}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "media.mp4")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newClient(t *testing.T, target string, rest bool, opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithInsecure(), client.WithRetry(fastRetry)}, opts...)
	if rest {
		opts = append(opts, client.WithREST("http://"+target))
	}
	c, err := client.New(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestCutsAtRandomPoints cuts the connection between the client and
// mediagw at random points, 20 runs over gRPC and REST: every upload ends
// byte-exact at X with one INIT.
func TestCutsAtRandomPoints(t *testing.T) {
	st := newStack(t, nil)
	const size = 3<<20 + 12345
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	for run := range 20 {
		rest := run%2 == 1
		target := st.m.grpcAddr
		if rest {
			target = st.m.httpAddr
		}
		p := newProxy(t, target)
		c := newClient(t, p.addr(), rest)
		data := mp4(size, seed+uint64(run))
		cuts := []int64{r.Int64N(size), r.Int64N(size)}
		p.plan(cuts...)
		before := xStats(t, st.x)["init"]
		res, err := c.Upload(context.Background(), client.File(writeFile(t, data)), client.UploadOptions{})
		if err != nil {
			t.Fatalf("run %d (rest %v, cuts at %v): %v", run, rest, cuts, err)
		}
		n, sha := xMedia(t, st.x, res.MediaID)
		if n != size || sha != sum(data) {
			t.Fatalf("run %d: X holds %d bytes, sha256 %s; want %d, %s", run, n, sha, size, sum(data))
		}
		if inits := xStats(t, st.x)["init"] - before; inits != 1 {
			t.Fatalf("run %d (cuts at %v): %d INITs, want 1", run, cuts, inits)
		}
		if p.cut.Load() == 0 {
			t.Fatalf("run %d: no connection was cut", run)
		}
		t.Logf("run %d rest=%v cuts at %v: %d connections cut, %d resumes", run, rest, cuts, p.cut.Load(), res.Resumes)
	}
}

// TestKilledMediagwResumes SIGKILLs mediagw mid-upload and starts it
// again on the same ledger and ports: the client resumes by itself.
func TestKilledMediagwResumes(t *testing.T) {
	st := newStack(t, []string{"--bandwidth=4MiB"})
	const size = 6 << 20
	data := mp4(size, 99)
	c := newClient(t, st.m.grpcAddr, false)
	u := uploadPastHalf(t, c, data, "mediagw was killed")
	st.m.kill()
	st.m.restart(t)
	o := u.wait(t, "the restart")
	resumedAt := u.resumedAt
	if o.err != nil {
		t.Fatal(o.err)
	}
	n, sha := xMedia(t, st.x, o.res.MediaID)
	if n != size || sha != sum(data) {
		t.Fatalf("X holds %d bytes, sha256 %s; want %d, %s", n, sha, size, sum(data))
	}
	if s := xStats(t, st.x); s["init"] != 1 || s["finalize"] != 1 {
		t.Fatalf("X saw %d INITs and %d FINALIZEs, want 1 each", s["init"], s["finalize"])
	}
	if o.res.Resumes == 0 || resumedAt.Load() <= 0 {
		t.Fatalf("%d resumes, resumed at %d: the upload did not resume past 0", o.res.Resumes, resumedAt.Load())
	}
	t.Logf("resumed at %d of %d after %d resumes", resumedAt.Load(), size, o.res.Resumes)
}

// halfUpload is an upload of a file running in the background, started by
// uploadPastHalf.
type halfUpload struct {
	done chan halfOutcome
	// resumedAt is the highest committed offset a resume reported.
	resumedAt *atomic.Int64
}

type halfOutcome struct {
	res *client.Result
	err error
}

// uploadPastHalf starts uploading data with c and returns once more than
// half of it was sent (before is what the test does next, for the failure
// message of an upload that ends first).
func uploadPastHalf(t *testing.T, c *client.Client, data []byte, before string) *halfUpload {
	t.Helper()
	size := int64(len(data))
	half := make(chan struct{})
	var once atomic.Bool
	u := &halfUpload{done: make(chan halfOutcome, 1), resumedAt: new(atomic.Int64)}
	progress := func(p client.Progress) {
		if p.Sent > size/2 && once.CompareAndSwap(false, true) {
			close(half)
		}
		if p.Resumes > 0 && !p.Done && p.Committed > u.resumedAt.Load() {
			u.resumedAt.Store(p.Committed)
		}
	}
	go func() {
		res, err := c.Upload(context.Background(), client.File(writeFile(t, data)), client.UploadOptions{Progress: progress})
		u.done <- halfOutcome{res, err}
	}()
	select {
	case <-half:
	case o := <-u.done:
		t.Fatalf("the upload ended before %s: %v", before, o.err)
	case <-time.After(time.Minute):
		t.Fatal("the upload did not reach half within a minute")
	}
	return u
}

// wait waits for the upload's end, within 2 minutes of after.
func (u *halfUpload) wait(t *testing.T, after string) halfOutcome {
	t.Helper()
	select {
	case o := <-u.done:
		return o
	case <-time.After(2 * time.Minute):
		t.Fatalf("the upload did not end within 2 minutes of %s", after)
	}
	return halfOutcome{}
}

// TestRateLimitWaitedOut: X's INIT limit is exhausted; mediagw answers
// ResourceExhausted with RetryInfo and the client waits that long before
// the retry that succeeds.
func TestRateLimitWaitedOut(t *testing.T) {
	st := newStack(t, []string{"--rate-limit=init=1/4s"}, "--rate-limit-wait=100ms")
	c1 := newClient(t, st.m.grpcAddr, false)
	if _, err := c1.Upload(context.Background(), client.File(writeFile(t, mp4(100<<10, 1))), client.UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	var retries []client.Retry
	c := newClient(t, st.m.grpcAddr, false, client.WithRetryNotify(func(r client.Retry) { retries = append(retries, r) }))
	start := time.Now()
	res, err := c.Upload(context.Background(), client.File(writeFile(t, mp4(100<<10, 2))), client.UploadOptions{})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(retries) == 0 || retries[0].Err.Code != codes.ResourceExhausted || retries[0].Err.RetryAfter <= 0 {
		t.Fatalf("retries %+v, want the first for ResourceExhausted with a RetryAfter", retries)
	}
	if ra := retries[0].Err.RetryAfter; retries[0].Wait < ra || took < ra {
		t.Fatalf("waited %v (the call took %v), but mediagw asked for %v", retries[0].Wait, took, ra)
	}
	t.Logf("RetryAfter %v, waited %v, the upload took %v, media %s", retries[0].Err.RetryAfter, retries[0].Wait, took, res.MediaID)
}

// TestCancelStopsAtOnceAndResumes cancels an upload mid-way: Upload
// returns at once with Canceled and where the upload stands, and the next
// Upload of the same file resumes it (one INIT).
func TestCancelStopsAtOnceAndResumes(t *testing.T) {
	st := newStack(t, []string{"--bandwidth=4MiB"})
	const size = 4 << 20
	data := mp4(size, 5)
	path := writeFile(t, data)
	c := newClient(t, st.m.grpcAddr, false)
	ctx, cancel := context.WithCancel(context.Background())
	var cancelledAt atomic.Int64
	progress := func(p client.Progress) {
		if p.Sent > size/2 && cancelledAt.Load() == 0 {
			cancelledAt.Store(time.Now().UnixNano())
			cancel()
		}
	}
	_, err := c.Upload(ctx, client.File(path), client.UploadOptions{Progress: progress})
	stopped := time.Since(time.Unix(0, cancelledAt.Load()))
	var e *client.Error
	if !errors.As(err, &e) || e.Code != codes.Canceled || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want Canceled", err)
	}
	if stopped > time.Second {
		t.Fatalf("Upload returned %v after the cancel", stopped)
	}
	if e.Upload.GetPhase() != mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED || e.IdempotencyKey == "" || e.Upload.GetIdempotencyKey() != e.IdempotencyKey {
		t.Fatalf("the error does not say where the upload stands: %+v", e)
	}
	// The next Upload resumes, whether mediagw has settled the cut stream
	// (INTERRUPTED) or still reads it as driven (RECEIVING: the resume
	// takes it over).
	var first atomic.Int64
	first.Store(-1)
	res, err := c.Upload(context.Background(), client.File(path), client.UploadOptions{Progress: func(p client.Progress) {
		first.CompareAndSwap(-1, p.Sent)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if first.Load() <= 0 || first.Load()%(256<<10) != 0 {
		t.Fatalf("the second Upload started at %d, want a committed segment boundary past 0", first.Load())
	}
	if n, sha := xMedia(t, st.x, res.MediaID); n != size || sha != sum(data) {
		t.Fatalf("X holds %d bytes, sha256 %s", n, sha)
	}
	if s := xStats(t, st.x); s["init"] != 1 {
		t.Fatalf("%d INITs, want 1", s["init"])
	}
	t.Logf("Upload returned %v after the cancel; resumed at %d of %d", stopped, first.Load(), size)
}

// TestPermanentErrorsEndAtOnce: refusals no retry can change end after
// one attempt.
func TestPermanentErrorsEndAtOnce(t *testing.T) {
	st := newStack(t, nil)
	c := newClient(t, st.m.grpcAddr, false, client.WithRetry(client.DefaultRetryPolicy()))
	for _, tc := range []struct {
		name string
		data []byte
		o    client.UploadOptions
		code codes.Code
	}{
		{"bytes of another type", mp4(10<<10, 1), client.UploadOptions{MediaType: "image/png"}, codes.InvalidArgument},
		{"sha256 mismatch", mp4(10<<10, 2), client.UploadOptions{SHA256: sum([]byte("other"))}, codes.InvalidArgument},
		{"resume of an unknown key", mp4(10<<10, 3), client.UploadOptions{IdempotencyKey: "never-seen", ResumeOffset: 5 << 10}, codes.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := c.Upload(context.Background(), client.File(writeFile(t, tc.data)), tc.o)
			var e *client.Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Attempts != 1 || client.IsRetryable(err) {
				t.Fatalf("err %v (%+v), want %v after 1 attempt", err, e, tc.code)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("took %v", took)
			}
		})
	}
	_, err := c.GetStatus(context.Background(), "1234567890")
	var e *client.Error
	if !errors.As(err, &e) || e.Code != codes.NotFound || client.IsRetryable(err) {
		t.Fatalf("GetStatus of an unknown id: %v", err)
	}
}

// TestUnknownSizeReader uploads a plain io.Reader of unknown size (mediagw
// spools it): the result reports the SHA-256 computed as it was read.
func TestUnknownSizeReader(t *testing.T) {
	st := newStack(t, nil)
	for i, rest := range []bool{false, true} {
		target := st.m.grpcAddr
		if rest {
			target = st.m.httpAddr
		}
		c := newClient(t, target, rest)
		data := mp4(700<<10+3, uint64(40+i))
		res, err := c.Upload(context.Background(), client.Reader(io.MultiReader(bytes.NewReader(data)), -1),
			client.UploadOptions{MediaType: "video/mp4"})
		if err != nil {
			t.Fatalf("rest %v: %v", rest, err)
		}
		if res.SHA256 != sum(data) || res.Size != int64(len(data)) || res.IdempotencyKey != "" {
			t.Fatalf("rest %v: result %+v", rest, res)
		}
		if n, sha := xMedia(t, st.x, res.MediaID); n != int64(len(data)) || sha != sum(data) {
			t.Fatalf("rest %v: X holds %d bytes, sha256 %s", rest, n, sha)
		}
	}
}
