package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// keyed is the start message of a keyed upload of data.
func keyed(key string, data []byte, sha bool) *mediagwv1.UploadStart {
	st := &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data)), IdempotencyKey: key}
	if sha {
		st.Sha256 = sum(data)
	}
	return st
}

func resumeAt(key string, off int64) *mediagwv1.UploadStart {
	return &mediagwv1.UploadStart{IdempotencyKey: key, ResumeOffset: &off}
}

// getUpload asks GetUpload, failing the test on error.
func (e *env) getUpload(key string) *mediagwv1.UploadState {
	e.t.Helper()
	st, err := e.client.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: key})
	if err != nil {
		e.t.Fatalf("GetUpload %s: %v", key, err)
	}
	return st
}

// waitPhase waits until key's upload is in phase.
func (e *env) waitPhase(key string, phase mediagwv1.UploadPhase) *mediagwv1.UploadState {
	e.t.Helper()
	var st *mediagwv1.UploadState
	waitFor(e.t, func() bool {
		s, err := e.client.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: key})
		st = s
		return err == nil && s.GetPhase() == phase
	})
	return st
}

// cutGRPC starts a keyed gRPC upload, sends its first n bytes, waits until
// X has committed at least one segment, and breaks the stream.
func (e *env) cutGRPC(key string, data []byte, n int, sha bool) *mediagwv1.UploadState {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := e.client.Upload(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = stream.Send(startMsg(keyed(key, data, sha)))
	for off := 0; off < n; off += 32 << 10 {
		_ = stream.Send(chunkMsg(data[off:min(off+32<<10, n)]))
	}
	waitFor(e.t, func() bool {
		st, err := e.client.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: key})
		return err == nil && st.GetCommittedBytes() > 0
	})
	cancel()
	return e.waitPhase(key, mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED)
}

func TestBrokenGRPCStreamResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	data := media("video/mp4", 1<<20+123, 51)
	st := e.cutGRPC("grpc-cut", data, 600<<10, true)
	if c := st.GetCommittedBytes(); c%(64<<10) != 0 || c == 0 || c > 600<<10 || st.GetMediaId() == "" || st.GetTotalBytes() != int64(len(data)) {
		t.Fatalf("interrupted state %v: committed must be a segment boundary within what was sent", st)
	}
	resp, err := e.upload(context.Background(), resumeAt("grpc-cut", st.GetCommittedBytes()), data[st.GetCommittedBytes():], fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetMediaId() != st.GetMediaId() {
		t.Fatalf("resume finished media %s, the interrupted upload was %s", resp.GetMediaId(), st.GetMediaId())
	}
	e.checkStored(resp.GetMediaId(), data)
	if s := e.x.X.Stats(); s.Requests["init"] != 1 || s.Requests["finalize"] != 1 {
		t.Fatalf("X saw %d INIT and %d FINALIZE, want 1 each", s.Requests["init"], s.Requests["finalize"])
	}
	done := e.getUpload("grpc-cut")
	if done.GetPhase() != mediagwv1.UploadPhase_UPLOAD_PHASE_COMPLETED || done.GetResponse().GetMediaId() != resp.GetMediaId() ||
		done.GetCommittedBytes() != int64(len(data)) {
		t.Fatalf("state after the resume: %v", done)
	}
}

// TestDroppedRESTConnectionResumes drops a REST upload's connection part
// way and resumes it over REST with the Idempotency-Key header.
func TestDroppedRESTConnectionResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	data := media("video/mp4", 1<<20, 52)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.httpURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/media:upload?media_type=video/mp4&sha256=%s HTTP/1.1\r\nHost: x\r\nIdempotency-Key: rest-cut\r\nContent-Length: %d\r\n\r\n", sum(data), len(data))
	_, _ = conn.Write(data[:500<<10])
	waitFor(t, func() bool {
		st, err := e.client.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: "rest-cut"})
		return err == nil && st.GetCommittedBytes() > 0
	})
	_ = conn.Close()
	st := e.waitPhase("rest-cut", mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED)
	off := st.GetCommittedBytes()

	// The REST view of the same state.
	res, err := http.Get(e.httpURL + "/v1/uploads/rest-cut")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), `"phase":"UPLOAD_PHASE_INTERRUPTED"`) || !strings.Contains(string(b), fmt.Sprintf(`"committed_bytes":"%d"`, off)) {
		t.Fatalf("GET /v1/uploads/rest-cut: HTTP %d %s", res.StatusCode, b)
	}
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/v1/media:upload?resume_offset=%d", e.httpURL, off), bytes.NewReader(data[off:]))
	req.Header.Set("Idempotency-Key", "rest-cut")
	code, out, _ := restUpload(t, req)
	if code != http.StatusOK {
		t.Fatalf("REST resume: HTTP %d %v", code, out)
	}
	e.checkStored(out["media_id"].(string), data)
	if s := e.x.X.Stats(); s.Requests["init"] != 1 || s.Requests["finalize"] != 1 {
		t.Fatalf("X saw %d INIT and %d FINALIZE, want 1 each", s.Requests["init"], s.Requests["finalize"])
	}
}

// TestMultipartResume: a multipart/form-data body resumes an interrupted
// upload; its Content-Length (boundaries and fields included) is not the
// media's length, which is checked as the part arrives.
func TestMultipartResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	data := media("video/mp4", 1<<20+77, 57)
	st := e.cutGRPC("mp-resume", data, 600<<10, true)
	off := st.GetCommittedBytes()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("resume_offset", strconv.FormatInt(off, 10))
	part, _ := mw.CreateFormFile("media", "clip.mp4")
	_, _ = part.Write(data[off:])
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Idempotency-Key", "mp-resume")
	code, out, _ := restUpload(t, req)
	if code != http.StatusOK {
		t.Fatalf("multipart resume: HTTP %d %v", code, out)
	}
	e.checkStored(out["media_id"].(string), data)
	if s := e.x.X.Stats(); s.Requests["init"] != 1 || s.Requests["finalize"] != 1 {
		t.Fatalf("X saw %d INIT and %d FINALIZE, want 1 each", s.Requests["init"], s.Requests["finalize"])
	}
}

// TestReplayMakesNoXCall: a finished key answers its stored response at
// once, over gRPC without waiting for chunks and over REST without reading
// the body.
func TestReplayMakesNoXCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	data := media("video/mp4", 200<<10, 53)
	first, err := e.upload(context.Background(), keyed("replay", data, false), data, fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	before := e.x.X.Stats().Requests
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := e.client.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(startMsg(keyed("replay", data, false)))
	var again mediagwv1.UploadResponse
	if err := stream.RecvMsg(&again); err != nil {
		t.Fatalf("replay before any chunk: %v", err)
	}
	if again.GetMediaId() != first.GetMediaId() || again.GetMediaKey() != first.GetMediaKey() {
		t.Fatalf("replay answered %v, first upload %v", &again, first)
	}
	// REST: a body of which nothing is ever sent.
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.httpURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/media:upload?media_type=video/mp4&idempotency_key=replay HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(data))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") || !strings.Contains(string(buf[:n]), first.GetMediaId()) {
		t.Fatalf("REST replay: %q", buf[:n])
	}
	if after := e.x.X.Stats().Requests; fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("X requests went from %v to %v during the replays", before, after)
	}
}

// TestKeyedRefusals checks every refusal of the ledger with its code and
// REST status.
func TestKeyedRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	data := media("video/mp4", 1<<20, 54)
	st := e.cutGRPC("refusals", data, 400<<10, false)
	off := st.GetCommittedBytes()
	bad := func(start *mediagwv1.UploadStart, body []byte, code codes.Code, msg string) {
		t.Helper()
		_, err := e.upload(context.Background(), start, body, fixed(32<<10))
		if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), msg) {
			t.Fatalf("%v: got %v, want %s containing %q", start, err, code, msg)
		}
	}
	bad(resumeAt("refusals", off+1), data[off+1:], codes.FailedPrecondition, fmt.Sprintf("resume at committed_bytes %d", off))
	mismatch := resumeAt("refusals", off)
	mismatch.TotalBytes = 5
	bad(mismatch, nil, codes.InvalidArgument, "was started with total_bytes")
	bad(resumeAt("never-started", 0), nil, codes.NotFound, "no upload with idempotency key")
	bad(&mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: 10, IdempotencyKey: "bad/key"}, nil, codes.InvalidArgument, "idempotency_key")
	_, err := e.client.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: "never-started"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("GetUpload of an unknown key: %v", err)
	}

	// Over REST: the offset conflict is 409 with where the upload stands.
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/v1/media:upload?resume_offset=%d", e.httpURL, off+1), bytes.NewReader(data[off+1:]))
	req.Header.Set("Idempotency-Key", "refusals")
	code, p, _ := problemOf(t, req)
	if code != http.StatusConflict || p["committed_bytes"] != float64(off) || p["idempotency_key"] != "refusals" {
		t.Fatalf("REST resume at the wrong offset: HTTP %d %v, want 409 with committed_bytes %d", code, p, off)
	}
	// A body that is not the rest of the file.
	req, _ = http.NewRequest(http.MethodPost, fmt.Sprintf("%s/v1/media:upload?resume_offset=%d", e.httpURL, off), bytes.NewReader(data[off+10:]))
	req.Header.Set("Idempotency-Key", "refusals")
	if code, p, _ := problemOf(t, req); code != http.StatusBadRequest || !strings.Contains(p["detail"].(string), "needs the remaining") {
		t.Fatalf("REST resume with a short body: HTTP %d %v", code, p)
	}
	res, err := http.Get(e.httpURL + "/v1/uploads/never-started")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("GET of an unknown key: HTTP %d", res.StatusCode)
	}

	// A FAILED key answers its error; a new attempt needs a new key.
	wrong := keyed("failed", data, false)
	wrong.Sha256 = strings.Repeat("0", 64)
	bad(wrong, data, codes.InvalidArgument, "sha256 mismatch")
	bad(keyed("failed", data, false), data, codes.InvalidArgument, "failed before; a new attempt needs a new key")
	if st := e.getUpload("failed"); st.GetPhase() != mediagwv1.UploadPhase_UPLOAD_PHASE_FAILED || st.GetError().GetCode() != "INVALID_ARGUMENT" {
		t.Fatalf("state of the failed key: %v", st)
	}
}

// TestDuplicateAndTakeover: a second plain start of a key a stream is
// driving is refused (Aborted / 409); a resume takes the upload over, the
// old stream ends Aborted, and the resume finishes byte-exact.
func TestDuplicateAndTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	data := media("video/mp4", 1<<20, 55)
	old, err := e.client.Upload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_ = old.Send(startMsg(keyed("takeover", data, true)))
	_ = old.Send(chunkMsg(data[:300<<10]))
	waitFor(t, func() bool {
		st, err := e.client.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: "takeover"})
		return err == nil && st.GetCommittedBytes() > 0
	})
	if st := e.getUpload("takeover"); st.GetPhase() != mediagwv1.UploadPhase_UPLOAD_PHASE_RECEIVING {
		t.Fatalf("state while a stream drives it: %v", st)
	}
	_, err = e.upload(context.Background(), keyed("takeover", data, true), data, fixed(32<<10))
	if status.Code(err) != codes.Aborted || !strings.Contains(err.Error(), "another stream is uploading") {
		t.Fatalf("duplicate start: %v, want Aborted", err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=video/mp4", bytes.NewReader(data))
	req.Header.Set("Idempotency-Key", "takeover")
	if code, p, _ := problemOf(t, req); code != http.StatusConflict {
		t.Fatalf("duplicate start over REST: HTTP %d %v, want 409", code, p)
	}

	// The resume takes over. The old stream's committed bytes may still
	// grow while it settles; a resume at an older offset is then refused
	// with the state, and resumed from there, as a client does.
	resumed := make(chan error, 1)
	var resp *mediagwv1.UploadResponse
	go func() {
		off := e.getUpload("takeover").GetCommittedBytes()
		for attempt := 0; attempt < 3; attempt++ {
			r, err := e.upload(context.Background(), resumeAt("takeover", off), data[off:], fixed(32<<10))
			if st := status.Convert(err); st.Code() == codes.FailedPrecondition {
				for _, d := range st.Details() {
					if s, ok := d.(*mediagwv1.UploadState); ok {
						off = s.GetCommittedBytes()
					}
				}
				continue
			}
			resp = r
			resumed <- err
			return
		}
		resumed <- fmt.Errorf("resume refused three times")
	}()
	oldErr := old.RecvMsg(&mediagwv1.UploadResponse{})
	if status.Code(oldErr) != codes.Aborted || !strings.Contains(oldErr.Error(), "superseded") {
		t.Fatalf("the taken-over stream ended with %v, want Aborted (superseded)", oldErr)
	}
	if err := <-resumed; err != nil {
		t.Fatalf("resume: %v", err)
	}
	e.checkStored(resp.GetMediaId(), data)
	if n := e.x.X.Stats().Requests["init"]; n != 1 {
		t.Fatalf("X saw %d INITs, want 1", n)
	}
}

// TestDrainPastTimeoutInterrupts: a keyed upload still running at the
// drain timeout gets Unavailable with its committed bytes, and resumes on
// a mediagw that opens the same ledger.
func TestDrainPastTimeoutInterrupts(t *testing.T) {
	t.Parallel()
	ledger := t.TempDir() + "/ledger.db"
	e := newEnv(t, xfake.Options{}, "--drain-timeout=300ms", "--ledger="+ledger)
	data := media("video/mp4", 1<<20, 56)
	stream, err := e.client.Upload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(startMsg(keyed("drain", data, true)))
	_ = stream.Send(chunkMsg(data[:400<<10]))
	waitFor(t, func() bool {
		st, err := e.client.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: "drain"})
		return err == nil && st.GetCommittedBytes() > 0
	})
	e.cancel()
	// The caller keeps its stream open, as a caller in the middle of
	// sending does.
	err = stream.RecvMsg(&mediagwv1.UploadResponse{})
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "shutting down") {
		t.Fatalf("upload cut by the drain: %v, want Unavailable (shutting down)", err)
	}
	var state *mediagwv1.UploadState
	for _, d := range st.Details() {
		if s, ok := d.(*mediagwv1.UploadState); ok {
			state = s
		}
	}
	if state == nil || state.GetCommittedBytes() == 0 || state.GetPhase() != mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED {
		t.Fatalf("the drain's error carries state %v, want INTERRUPTED with committed bytes", state)
	}
	e.waitServed("serve did not return after the drain")

	// A new mediagw on the same ledger and the same X.
	e2 := startApp(t, e.x.URL, nil, "--ledger="+ledger)
	e2.x = e.x
	off := state.GetCommittedBytes()
	resp, err := e2.upload(context.Background(), resumeAt("drain", off), data[off:], fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	e2.checkStored(resp.GetMediaId(), data)
}

// TestFullSegmentsFinishAfterTheCallerGoes: the APPENDs that hold all
// their bytes when the caller's stream breaks still finish and count: the
// resume starts after them, not before. The APPENDs are held in front of
// X until mediagw has seen the break, so they are in flight then whatever
// the scheduling.
func TestFullSegmentsFinishAfterTheCallerGoes(t *testing.T) {
	t.Parallel()
	e, w := newWatchedEnv(t, true, xfake.Options{})
	data := media("video/mp4", 1<<20, 57)
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := e.client.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(startMsg(keyed("full-segments", data, false)))
	// Four whole 64 KiB segments and a bit: their four APPENDs (the
	// parallelism) are in flight when the stream breaks.
	for off := 0; off < 4*64<<10+1000; off += 1000 {
		_ = stream.Send(chunkMsg(data[off : off+1000]))
	}
	w.await(t, "four APPENDs held in front of X", func() bool { return w.total().Arrived == 4 })
	cancel()
	e.logs.await(t, 15*time.Second, "upload interrupted: the APPENDs in flight may finish")
	if c := w.total(); c.Active != 4 || c.Gone != 0 || e.x.X.Stats().Requests["append"] != 0 {
		t.Fatalf("when mediagw saw the break: APPENDs %+v, %d at X; want the 4 still in flight", c, e.x.X.Stats().Requests["append"])
	}
	w.unhold()
	st := e.waitPhase("full-segments", mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED)
	if st.GetCommittedBytes() != 4*64<<10 {
		t.Fatalf("committed %d after the break, want the 4 segments in flight (%d)", st.GetCommittedBytes(), 4*64<<10)
	}
	if c := w.total(); c.Arrived != 4 || c.Gone != 0 {
		t.Fatalf("APPENDs %+v, want the 4 answered and no other", c)
	}
}
