package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// watchAll collects a WatchStatus stream until it ends.
func watchAll(ctx context.Context, e *env, id string) ([]*mediagwv1.ProcessingStatus, error) {
	stream, err := e.client.WatchStatus(ctx, &mediagwv1.WatchStatusRequest{MediaId: id})
	if err != nil {
		return nil, err
	}
	var out []*mediagwv1.ProcessingStatus
	for {
		st, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, st)
	}
}

// checkProgression asserts a watch went forward only and ended in want.
func checkProgression(t *testing.T, seq []*mediagwv1.ProcessingStatus, want mediagwv1.ProcessingState) {
	t.Helper()
	if len(seq) < 2 {
		t.Fatalf("watch sent %d states, want the first state and its changes: %v", len(seq), seq)
	}
	for i := 1; i < len(seq); i++ {
		if seq[i].GetState() < seq[i-1].GetState() || (seq[i].GetState() == seq[i-1].GetState() && seq[i].GetProgressPercent() <= seq[i-1].GetProgressPercent()) {
			t.Fatalf("state %d (%v) is not a change forward from %v", i, seq[i], seq[i-1])
		}
	}
	if last := seq[len(seq)-1]; last.GetState() != want {
		t.Fatalf("watch ended in %v, want %v", last, want)
	}
}

func TestWatchStatusToSucceeded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{ProcessingTime: 2500 * time.Millisecond})
	data := media("video/mp4", 200<<10, 5)
	resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(50<<10))
	if err != nil {
		t.Fatal(err)
	}
	seq, err := watchAll(context.Background(), e, resp.GetMediaId())
	if err != nil {
		t.Fatalf("watch: %v (after %v)", err, seq)
	}
	if seq[0].GetState() != mediagwv1.ProcessingState_PROCESSING_STATE_PENDING {
		t.Fatalf("first state %v, want the PENDING the upload answered", seq[0])
	}
	checkProgression(t, seq, mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED)
	if last := seq[len(seq)-1]; last.GetProgressPercent() != 100 || last.GetError() != nil {
		t.Fatalf("final state %v", last)
	}
	// The terminal state is remembered: GetStatus asks X nothing more.
	before := e.x.X.Stats().Requests["status"]
	st, err := e.client.GetStatus(context.Background(), &mediagwv1.GetStatusRequest{MediaId: resp.GetMediaId()})
	if err != nil || st.GetState() != mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED {
		t.Fatalf("GetStatus = %v, %v", st, err)
	}
	if after := e.x.X.Stats().Requests["status"]; after != before {
		t.Fatalf("GetStatus of a finished media sent %d STATUS calls", after-before)
	}
}

func TestWatchStatusToFailed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{ProcessingTime: time.Second})
	// MPEG-TS is not sniffed by mediagw; X finds no sync byte and fails it.
	data := media("video/webm", 100<<10, 6)
	data[0] = 0
	resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp2t", TotalBytes: int64(len(data))}, data, fixed(30<<10))
	if err != nil {
		t.Fatal(err)
	}
	seq, err := watchAll(context.Background(), e, resp.GetMediaId())
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	checkProgression(t, seq, mediagwv1.ProcessingState_PROCESSING_STATE_FAILED)
	perr := seq[len(seq)-1].GetError()
	if perr.GetCode() != 1 || perr.GetName() != "InvalidMedia" || perr.GetMessage() == "" {
		t.Fatalf("processing error %v, want X's code 1 InvalidMedia", perr)
	}
}

func TestConcurrentWatchersShareOnePoller(t *testing.T) {
	t.Parallel()
	const processing = 3 * time.Second
	e := newEnv(t, xfake.Options{ProcessingTime: processing})
	data := media("video/mp4", 100<<10, 8)
	resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(100<<10))
	if err != nil {
		t.Fatal(err)
	}
	const watchers = 5
	var wg sync.WaitGroup
	results := make([][]*mediagwv1.ProcessingStatus, watchers)
	errs := make([]error, watchers)
	for i := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = watchAll(context.Background(), e, resp.GetMediaId())
		}()
	}
	wg.Wait()
	for i := range watchers {
		if errs[i] != nil {
			t.Fatalf("watcher %d: %v", i, errs[i])
		}
		checkProgression(t, results[i], mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED)
	}
	// X says check_after_secs 1: one poller makes about one STATUS call per
	// second of processing; five pollers would make five times as many.
	polls := e.x.X.Stats().Requests["status"]
	if limit := int64(processing/time.Second) + 2; polls > limit || polls < 2 {
		t.Fatalf("%d watchers caused %d STATUS calls in %v of processing, want 2..%d", watchers, polls, processing, limit)
	}
}

func TestGetStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	png := media("image/png", 3000, 4)
	resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: int64(len(png))}, png, fixed(3000))
	if err != nil {
		t.Fatal(err)
	}
	// X answers STATUS only for media it processes: the image is known here.
	st, err := e.client.GetStatus(context.Background(), &mediagwv1.GetStatusRequest{MediaId: resp.GetMediaId()})
	if err != nil || st.GetState() != mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED {
		t.Fatalf("GetStatus(image) = %v, %v", st, err)
	}
	if n := e.x.X.Stats().Requests["status"]; n != 0 {
		t.Fatalf("GetStatus of an uploaded image sent %d STATUS calls", n)
	}
	// Media this mediagw did not upload: X's answer decides.
	_, err = e.client.GetStatus(context.Background(), &mediagwv1.GetStatusRequest{MediaId: "1234567890123456789"})
	if codeOf(err) != "NotFound" {
		t.Fatalf("GetStatus(unknown) = %v, want NotFound", err)
	}
	res, err := http.Get(e.httpURL + "/v1/media/1234567890123456789/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var p map[string]any
	_ = json.NewDecoder(res.Body).Decode(&p)
	if res.StatusCode != http.StatusNotFound || p["code"] != "NOT_FOUND" || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("REST status of unknown media: HTTP %d %v", res.StatusCode, p)
	}
	res2, err := http.Get(e.httpURL + "/v1/media/" + resp.GetMediaId() + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	var ok map[string]any
	_ = json.NewDecoder(res2.Body).Decode(&ok)
	if res2.StatusCode != http.StatusOK || ok["state"] != "PROCESSING_STATE_SUCCEEDED" || ok["media_id"] != resp.GetMediaId() {
		t.Fatalf("REST status: HTTP %d %v", res2.StatusCode, ok)
	}
}

func TestRESTWatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{ProcessingTime: 2500 * time.Millisecond})
	data := media("video/mp4", 100<<10, 10)
	// Each watch starts right after its upload, while X still processes:
	// its first state is X's, not what the upload answered.
	upload := func(t *testing.T) string {
		resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(100<<10))
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetMediaId()
	}
	t.Run("ndjson", func(t *testing.T) {
		t.Parallel()
		res, err := http.Get(e.httpURL + "/v1/media/" + upload(t) + "/status:watch")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var states []string
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			var line struct {
				Result map[string]any `json:"result"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Result == nil {
				t.Fatalf("line %q is not a result: %v", sc.Text(), err)
			}
			states = append(states, line.Result["state"].(string))
		}
		if len(states) < 2 || states[0] != "PROCESSING_STATE_PENDING" || states[len(states)-1] != "PROCESSING_STATE_SUCCEEDED" {
			t.Fatalf("NDJSON states %v", states)
		}
	})
	t.Run("server-sent events", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequest(http.MethodGet, e.httpURL+"/v1/media/"+upload(t)+"/status:watch", nil)
		req.Header.Set("Accept", "text/event-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("Content-Type %q", ct)
		}
		b, _ := io.ReadAll(res.Body)
		events := strings.Split(strings.TrimSpace(string(b)), "\n\n")
		if len(events) < 2 || !strings.HasPrefix(events[0], "event: status\ndata: {") ||
			!strings.Contains(events[len(events)-1], `"state":"PROCESSING_STATE_SUCCEEDED"`) {
			t.Fatalf("events:\n%s", b)
		}
	})
	t.Run("sse error before the first event", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequest(http.MethodGet, e.httpURL+"/v1/media/99999/status:watch", nil)
		req.Header.Set("Accept", "text/event-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusNotFound || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("HTTP %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
	})
}

// TestWatchThroughXFaults: X answers 503 to some STATUS calls (and to some
// upload calls, which the adapter retries); the poller backs off and the
// watch still ends in SUCCEEDED.
func TestWatchThroughXFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{ProcessingTime: 2 * time.Second, FaultRate: 0.3,
		FaultKinds: []xfake.FaultKind{xfake.Fault503}, Seed: 7}, "--max-attempts=1")
	data := media("video/mp4", 100<<10, 36)
	var resp *mediagwv1.UploadResponse
	var err error
	for range 10 { // with one attempt per call, X's 503s fail some uploads: try again
		if resp, err = e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(32<<10)); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	seq, err := watchAll(context.Background(), e, resp.GetMediaId())
	if err != nil {
		t.Fatalf("watch through 503s: %v after %v", err, seq)
	}
	checkProgression(t, seq, mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED)
	if e.x.X.Stats().Faults[xfake.Fault503] == 0 {
		t.Fatal("the emulator injected no fault: the test proved nothing")
	}
}

// TestStatusErrorWhileInProgressIsFinal: X has sent processing_info.error
// with state still in_progress at 99% (recorded exchange
// v1_11_STATUS_in_progress_WITH_error) and never moved on to failed. A
// watch must end at once with FAILED and X's error, not poll until the
// watch timeout.
func TestStatusErrorWhileInProgressIsFinal(t *testing.T) {
	t.Parallel()
	var statusCalls atomic.Int64
	x := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("command") != "STATUS" {
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		statusCalls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"media_id":1682626180757979138,"media_id_string":"1682626180757979138","media_key":"7_1682626180757979138","size":3740488,"processing_info":{"state":"in_progress","progress_percent":99,"error":{"code":1,"name":"InvalidMedia","message":"file is invalid"}}}`)
	}))
	t.Cleanup(x.Close)
	e := startApp(t, x.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := watchAll(ctx, e, "1682626180757979138")
	if err != nil {
		t.Fatal(err)
	}
	last := got[len(got)-1]
	if len(got) != 1 || last.GetState() != mediagwv1.ProcessingState_PROCESSING_STATE_FAILED ||
		last.GetError().GetName() != "InvalidMedia" || last.GetProgressPercent() != 99 {
		t.Fatalf("watch sent %v, want one FAILED with InvalidMedia", got)
	}
	if n := statusCalls.Load(); n != 1 {
		t.Fatalf("X answered %d STATUS calls, want 1", n)
	}
}

// TestWatchStartsFromXNotTheUpload: a watch that starts after X finished
// processing sends X's SUCCEEDED first, not the PENDING the upload
// answered.
func TestWatchStartsFromXNotTheUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{ProcessingTime: 200 * time.Millisecond})
	data := media("video/mp4", 100<<10, 12)
	resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(100<<10))
	if err != nil {
		t.Fatal(err)
	}
	if st := resp.GetProcessing().GetState(); st != mediagwv1.ProcessingState_PROCESSING_STATE_PENDING {
		t.Fatalf("the upload answered %v, want PENDING", st)
	}
	waitFor(t, func() bool { return e.x.Media(t, resp.GetMediaId()).State == "succeeded" })
	seq, err := watchAll(context.Background(), e, resp.GetMediaId())
	if err != nil {
		t.Fatal(err)
	}
	if len(seq) != 1 || seq[0].GetState() != mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED {
		t.Fatalf("watch sent %v; X already says SUCCEEDED", seq)
	}
}

// TestRESTWatchErrorIsAProblemLine: a watch that fails after its first
// state ends with the error in-band, as an {"error": problem} line of the
// NDJSON stream (an "error" event with SSE), never an rpc Status.
func TestRESTWatchErrorIsAProblemLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{ProcessingTime: time.Minute}, "--watch-timeout=1500ms")
	data := media("video/mp4", 100<<10, 111)
	resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(e.httpURL + "/v1/media/" + resp.GetMediaId() + "/status:watch")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("Content-Type %q", ct)
	}
	var lines []map[string]map[string]any
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		var l map[string]map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	last := lines[len(lines)-1]["error"]
	if len(lines) < 2 || lines[0]["result"] == nil || last == nil || last["code"] != "DEADLINE_EXCEEDED" ||
		last["status"] != float64(504) || last["type"] != "about:blank" || last["detail"] == "" {
		t.Fatalf("watch lines %v, want results then one problem line", lines)
	}
}
