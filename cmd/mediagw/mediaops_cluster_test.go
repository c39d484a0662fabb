package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

func xfaketestServer(t *testing.T) *xfaketest.Server {
	return xfaketest.New(t, xfake.Options{Tokens: []string{testToken}, ProcessingTime: time.Second, Seed: 80})
}

// gate stands between one replica and xfake: it passes every request on,
// except that while armed it holds the first metadata call (and tells
// which gate holds it) until the test drops or forwards it.
type gate struct {
	i     int
	xURL  string
	srv   *httptest.Server
	calls *gateCalls
}

// gateCalls is shared by the gates of a cluster.
type gateCalls struct {
	mu       sync.Mutex
	armed    bool
	held     chan heldCall
	metadata map[int]int // metadata calls passed on, by gate
	lookups  map[int]int
}

type heldCall struct {
	gate    int
	header  http.Header
	body    []byte
	path    string
	release chan bool // true: forward to X, false: drop
}

func newGate(t *testing.T, i int, xURL string, calls *gateCalls) *gate {
	g := &gate{i: i, xURL: xURL, calls: calls}
	target, _ := url.Parse(xURL)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isMeta := r.Method == http.MethodPost && r.URL.Path == "/2/media/metadata"
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/2/media/") && !strings.HasPrefix(r.URL.Path, "/2/media/upload") {
			calls.mu.Lock()
			calls.lookups[i]++
			calls.mu.Unlock()
		}
		body, _ := io.ReadAll(r.Body)
		if isMeta {
			calls.mu.Lock()
			hold := calls.armed
			calls.armed = false
			if !hold {
				calls.metadata[i]++
			}
			calls.mu.Unlock()
			if hold {
				h := heldCall{gate: i, header: r.Header.Clone(), body: body, path: r.URL.RequestURI(), release: make(chan bool)}
				calls.held <- h
				if <-h.release {
					// Forwarded although the caller is gone: X applies it.
					req, _ := http.NewRequest(http.MethodPost, xURL+h.path, bytes.NewReader(h.body))
					req.Header = h.header
					if res, err := http.DefaultClient.Do(req); err == nil {
						res.Body.Close()
					}
				}
				// The replica was killed: nobody reads an answer.
				if hj, ok := w.(http.Hijacker); ok {
					if conn, _, err := hj.Hijack(); err == nil {
						conn.Close()
					}
				}
				return
			}
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target.String()+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		_, _ = io.Copy(w, res.Body)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// TestActionsTakenOverAfterKill: the replica that polls a video dies with
// kill -9 after SUCCEEDED, once its metadata call is recorded SENDING but
// before X has it; another replica finds the open action in the shared
// ledger, asks X's lookup, and applies the alt text: X holds it once.
// Then the same with the call reaching X after the kill: the lookup shows
// it, and nothing is sent again.
func TestActionsTakenOverAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three mediagw processes on Redis")
	}
	calls := &gateCalls{held: make(chan heldCall, 1), metadata: map[int]int{}, lookups: map[int]int{}}
	var gates []*gate
	c := newClusterWith(t, 3, 2*time.Second, func(c *cluster) {
		for i := range 3 {
			gates = append(gates, newGate(t, i, c.xURL, calls))
		}
		c.extra = []string{"--actions-scan=300ms", "--actions-call-timeout=2s"}
		c.flagsFor = func(r *replica) []string {
			return []string{"--x-api-url=" + gates[int(r.name[len(r.name)-1]-'a')].srv.URL}
		}
	}, "--token="+testToken, "--processing-time=1s")

	run := func(from *replica, key, alt string, forward bool) (string, int) {
		calls.mu.Lock()
		calls.armed = true
		calls.mu.Unlock()
		data := media("video/mp4", 200<<10, uint64(len(key)))
		q := url.Values{"media_type": {"video/mp4"}, "media_category": {"tweet_video"}, "alt_text": {alt}}
		req, _ := http.NewRequest(http.MethodPost, "http://"+from.http+"/v1/media:upload?"+q.Encode(), bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Idempotency-Key", key)
		code, m, _ := restUpload(t, req)
		id, _ := m["media_id"].(string)
		if code != http.StatusOK || id == "" {
			t.Fatalf("upload: HTTP %d %v", code, m)
		}
		var h heldCall
		select {
		case h = <-calls.held:
		case <-time.After(30 * time.Second):
			t.Fatal("no metadata call within 30s of the upload")
		}
		c.kill(c.reps[h.gate])
		h.release <- forward
		var info xfake.MediaInfo
		eventually(t, 60*time.Second, "X holds the metadata call", func() bool {
			c.getJSON(c.xURL+"/_xfake/media/"+id, &info)
			calls.mu.Lock()
			defer calls.mu.Unlock()
			return info.MetadataRequests >= 1 && (forward || calls.metadata[0]+calls.metadata[1]+calls.metadata[2] >= 1)
		})
		// The ledger says APPLIED on a live replica, and X holds it once.
		var live *replica
		for i, r := range c.reps {
			if i != h.gate && r.cmd.ProcessState == nil {
				live = r
			}
		}
		eventually(t, 30*time.Second, "the live replica's ledger says APPLIED", func() bool {
			_, st := c.getUpload(live, key)
			a, _ := st["actions"].(map[string]any)
			md, _ := a["metadata"].(map[string]any)
			return md["state"] == "ACTION_STATE_APPLIED"
		})
		c.getJSON(c.xURL+"/_xfake/media/"+id, &info)
		if info.MetadataRequests != 1 || info.Metadata == nil || info.Metadata.AltText == nil || info.Metadata.AltText.Text != alt {
			t.Fatalf("X holds %d metadata calls and %+v; want 1 with the alt text", info.MetadataRequests, info.Metadata)
		}
		return id, h.gate
	}

	_, killed := run(c.reps[0], "kill-1", "A bicycle race", false)
	calls.mu.Lock()
	for g, n := range calls.metadata {
		if n > 0 && g == killed {
			t.Errorf("the killed replica's gate passed %d metadata calls", n)
		}
	}
	sent := calls.metadata[0] + calls.metadata[1] + calls.metadata[2]
	calls.metadata = map[int]int{}
	calls.mu.Unlock()
	if sent != 1 {
		t.Fatalf("%d metadata calls after the kill, want 1", sent)
	}
	t.Logf("first kill: replica %d died holding the call; another applied it", killed)

	var from *replica
	for i, r := range c.reps {
		if i != killed {
			from = r
			break
		}
	}
	_, killed2 := run(from, "kill-2", "A bicycle race, again", true)
	calls.mu.Lock()
	sent = calls.metadata[0] + calls.metadata[1] + calls.metadata[2]
	lookups := 0
	for g, n := range calls.lookups {
		if g != killed && g != killed2 {
			lookups += n
		}
	}
	calls.mu.Unlock()
	if sent != 0 || lookups == 0 {
		t.Fatalf("after the second kill: %d metadata calls (want 0: X had it) and %d lookups by the survivor (want some)", sent, lookups)
	}
	t.Logf("second kill: replica %d died after its call reached X; the survivor's lookup found it", killed2)
}

// TestActionsAfterRestart: one mediagw on its bbolt ledger is killed with
// -9 after recording its metadata call SENDING, before X has it; the next
// start finds the open action, checks X's lookup and applies it once.
func TestActionsAfterRestart(t *testing.T) {
	t.Parallel()
	x := xfaketestServer(t)
	calls := &gateCalls{held: make(chan heldCall, 1), metadata: map[int]int{}, lookups: map[int]int{}, armed: true}
	g := newGate(t, 0, x.URL, calls)
	args := []string{"--x-api-url=" + g.srv.URL, "--x-token=" + testToken, "--segment-size=64KiB", "--actions-scan=200ms", "--actions-call-timeout=2s",
		"--ledger=" + filepath.Join(t.TempDir(), "ledger.db")}
	p := startProc(t, args...)
	data := media("video/mp4", 200<<10, 81)
	alt := "A lighthouse, after a restart"
	resp, err := uploadVia(context.Background(), p.client, &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data)),
		IdempotencyKey: "restart-1", Metadata: &mediagwv1.MediaMetadata{AltText: &alt}}, data, fixed(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	var h heldCall
	select {
	case h = <-calls.held:
	case <-time.After(30 * time.Second):
		t.Fatal("no metadata call within 30s")
	}
	p.kill()
	h.release <- false // X never gets it
	if m := x.Media(t, resp.GetMediaId()); m.MetadataRequests != 0 {
		t.Fatalf("X holds %d metadata calls before the restart", m.MetadataRequests)
	}
	p = startProc(t, args...)
	waitFor(t, func() bool {
		st, err := p.client.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: "restart-1"})
		return err == nil && st.GetActions().GetMetadata().GetState() == mediagwv1.ActionState_ACTION_STATE_APPLIED
	})
	m := x.Media(t, resp.GetMediaId())
	calls.mu.Lock()
	lookups := calls.lookups[0]
	calls.mu.Unlock()
	if m.MetadataRequests != 1 || m.Metadata.AltText.Text != alt || lookups == 0 {
		t.Fatalf("X holds %d metadata calls (%+v) after %d lookups; want 1 after a lookup", m.MetadataRequests, m.Metadata, lookups)
	}
}
