package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/policy"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// needFFmpeg skips the test when ffmpeg is missing, except in CI
// (CI=true), where the real-media fixtures are required.
func needFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ffmpeg is required in CI (apt-get install -y ffmpeg): %v", err)
		}
		t.Skipf("ffmpeg not found (apt-get install -y ffmpeg): the real-media tests are skipped")
	}
}

// makeMedia runs ffmpeg with args writing dir/name and returns the file.
func makeMedia(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-hide_banner", "-nostdin", "-v", "error", "-y"}, args...), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ruleCase is a fixture that breaks one of X's rules, in two layouts: the
// decisive header within the first bytes (fast) and at the end, past what
// mediagw reads before INIT (end; nil where the format has no such
// layout).
type ruleCase struct {
	reason, field, limit, actual string
	mediaType, category          string
	fast, end                    []byte
}

// ruleCases makes the fixtures: seconds of testsrc/sine, lossless so that
// the movies with their moov at the end are over mediagw's 512 KiB read
// before INIT.
func ruleCases(t *testing.T) []ruleCase {
	t.Helper()
	needFFmpeg(t)
	dir := t.TempDir()
	movie := func(name string, src string, secs int, enc ...string) (fast, end []byte) {
		var args []string
		for _, in := range strings.Split(src, "|") { // a second input: audio
			args = append(args, "-f", "lavfi", "-i", in)
		}
		args = append(append(args, "-t", fmt.Sprint(secs)), enc...)
		end = makeMedia(t, dir, name+"-end.mp4", args...)
		fast = makeMedia(t, dir, name+"-fast.mp4", "-i", filepath.Join(dir, name+"-end.mp4"), "-c", "copy", "-movflags", "+faststart")
		if len(end) <= 512<<10 {
			t.Fatalf("fixture %s is %d bytes: the moov-at-end case needs more than 512 KiB", name, len(end))
		}
		return fast, end
	}
	lossless := []string{"-c:v", "libx264", "-preset", "ultrafast", "-qp", "0"}
	var cs []ruleCase
	f, e := movie("fps120", "testsrc=size=320x240:rate=120", 4, append(lossless, "-pix_fmt", "yuv420p")...)
	cs = append(cs, ruleCase{"FRAME_RATE_TOO_HIGH", "frame_rate", "60", "120", "video/mp4", "tweet_video", f, e})
	f, e = movie("yuv444", "testsrc=size=320x240:rate=30", 8, append(lossless, "-pix_fmt", "yuv444p")...)
	cs = append(cs, ruleCase{"UNSUPPORTED_CHROMA", "chroma_format", "4:2:0", "4:4:4", "video/mp4", "tweet_video", f, e})
	// dm_video takes 140 s: 150 s of a small, noisy picture at 2 fps.
	f, e = movie("long", "testsrc=size=160x120:rate=2,noise=alls=100:allf=t", 150, append(lossless, "-pix_fmt", "yuv420p")...)
	cs = append(cs, ruleCase{"VIDEO_TOO_LONG", "duration", "140s", "150s", "video/mp4", "dm_video", f, e})
	f, e = movie("hevc", "testsrc=size=320x240:rate=30,noise=alls=60:allf=t", 2, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "lossless=1:log-level=error",
		"-pix_fmt", "yuv420p", "-tag:v", "hvc1")
	cs = append(cs, ruleCase{"UNSUPPORTED_VIDEO_CODEC", "video_codec", "h264", "hevc", "video/mp4", "tweet_video", f, e})
	f, e = movie("10bit", "testsrc=size=320x240:rate=30", 8, append(lossless, "-pix_fmt", "yuv420p10le")...)
	cs = append(cs, ruleCase{"UNSUPPORTED_BIT_DEPTH", "bit_depth", "8", "10", "video/mp4", "tweet_video", f, e})
	f, e = movie("mp3", "testsrc=size=320x240:rate=30,noise=alls=60:allf=t|sine=d=4", 4, append(lossless, "-pix_fmt", "yuv420p", "-c:a", "libmp3lame")...)
	cs = append(cs, ruleCase{"UNSUPPORTED_AUDIO_CODEC", "audio_codec", "aac-lc", "mp3", "video/mp4", "tweet_video", f, e})
	f, e = movie("tiny", "testsrc=size=24x24:rate=30,noise=alls=100:allf=t", 40, append(lossless, "-pix_fmt", "yuv420p")...)
	cs = append(cs, ruleCase{"DIMENSIONS_TOO_SMALL", "dimensions", "32x32", "24x24", "video/mp4", "tweet_video", f, e})
	gif := makeMedia(t, dir, "frames.gif", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=100", "-t", "4")
	// A GIF is refused once the frames seen pass the limit: actual is
	// the count then (the file has 400).
	cs = append(cs, ruleCase{"GIF_TOO_MANY_FRAMES", "frames", "350", "3", "image/gif", "tweet_gif", gif, nil})
	return cs
}

// uploadREST posts data raw and returns the HTTP status and the body.
func (e *env) uploadREST(t *testing.T, mediaType, category string, data []byte) (int, map[string]any) {
	t.Helper()
	url := e.httpURL + "/v1/media:upload?media_type=" + mediaType + "&media_category=" + category
	code, body, _ := restCall(t, http.MethodPost, url, "", data)
	return code, body
}

func requests(e *env, kind string) int64 { return e.x.X.Stats().Requests[kind] }

// checkRefusal asserts a gRPC refusal names the rule with its limit and
// actual value in ErrorInfo and BadRequest.
func checkRefusal(t *testing.T, err error, c ruleCase) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("%s: %v, want InvalidArgument", c.reason, err)
	}
	var info *errdetails.ErrorInfo
	var field *errdetails.BadRequest_FieldViolation
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetReason() == c.reason {
				info = d
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				if v.GetReason() == c.reason {
					field = v
				}
			}
		}
	}
	if info == nil || field == nil || field.GetField() != c.field || field.GetDescription() == "" {
		t.Fatalf("%s: details %v lack the rule (ErrorInfo %v, BadRequest %v)", c.reason, st.Details(), info, field)
	}
	if c.field == "frames" {
		if n, err := strconv.Atoi(info.GetMetadata()["actual"]); err != nil || n <= 350 || n > 400 {
			t.Fatalf("%s: actual %q, want a frame count over 350 (of 400)", c.reason, info.GetMetadata()["actual"])
		}
	}
	if info.GetMetadata()["limit"] != c.limit || !strings.HasPrefix(info.GetMetadata()["actual"], c.actual) {
		t.Fatalf("%s: metadata %v, want limit %q actual %q…", c.reason, info.GetMetadata(), c.limit, c.actual)
	}
}

// checkProblem asserts a REST refusal is a 422 problem that lists the rule.
func checkProblem(t *testing.T, code int, p map[string]any, c ruleCase) {
	t.Helper()
	if code != http.StatusUnprocessableEntity || p["code"] != "INVALID_ARGUMENT" {
		t.Fatalf("%s: HTTP %d %v, want 422 INVALID_ARGUMENT", c.reason, code, p)
	}
	vs, _ := p["violations"].([]any)
	for _, v := range vs {
		m, _ := v.(map[string]any)
		if m["reason"] == c.reason && m["field"] == c.field && fmt.Sprint(m["limit"]) == c.limit+map[bool]string{true: "<nil>"}[c.limit == ""] &&
			strings.HasPrefix(fmt.Sprint(m["actual"]), c.actual) {
			return
		}
	}
	t.Fatalf("%s: problem %v does not list the rule", c.reason, p)
}

// TestMediaRulesEnforced sends, over gRPC and REST, media that breaks
// each rule: with its header first it is refused before INIT (X sees no
// call); with its moov at the end it is streamed and refused before
// FINALIZE (X never finalizes it).
func TestMediaRulesEnforced(t *testing.T) {
	cases := ruleCases(t)
	e := newEnv(t, xfake.Options{}, "--media-checks=enforce")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	total := func() (n int64) {
		for _, v := range e.x.X.Stats().Requests {
			n += v
		}
		return n
	}
	try := func(c ruleCase, transport string, data []byte) {
		t.Helper()
		if transport == "grpc" {
			cat := mediagwv1.MediaCategory(mediagwv1.MediaCategory_value["MEDIA_CATEGORY_"+strings.ToUpper(c.category)])
			_, err := e.upload(ctx, &mediagwv1.UploadStart{MediaType: c.mediaType, MediaCategory: cat,
				TotalBytes: int64(len(data))}, data, fixed(32<<10))
			checkRefusal(t, err, c)
			return
		}
		code, p := e.uploadREST(t, c.mediaType, c.category, data)
		checkProblem(t, code, p, c)
	}
	// Header first: refused before INIT. These run before any upload
	// that reaches X, so that X's request count is still.
	for _, c := range cases {
		for _, transport := range []string{"grpc", "rest"} {
			before := total()
			try(c, transport, c.fast)
			if n := total() - before; n != 0 {
				t.Fatalf("%s over %s, header first: X saw %d requests, want none (%v)", c.reason, transport, n, e.x.X.Stats().Requests)
			}
		}
	}
	// moov at the end: INIT and the APPENDs, never FINALIZE.
	for _, c := range cases {
		if c.end == nil {
			continue
		}
		for _, transport := range []string{"grpc", "rest"} {
			init0, fin0 := requests(e, "init"), requests(e, "finalize")
			try(c, transport, c.end)
			if inits, fins := requests(e, "init")-init0, requests(e, "finalize")-fin0; inits != 1 || fins != 0 {
				t.Fatalf("%s over %s, moov at the end: X saw %d INIT and %d FINALIZE, want 1 and 0", c.reason, transport, inits, fins)
			}
		}
	}
	if n := requests(e, "finalize"); n != 0 {
		t.Fatalf("X finalized %d uploads, want none", n)
	}
	text := scrape(t, e)
	for _, c := range cases {
		if n, _ := metricValue(text, "mediagw_uploads_media_violations_total", `reason="`+c.reason+`"`, `action="refused"`); n < 2 {
			t.Errorf("%s: %v refusals counted, want at least 2", c.reason, n)
		}
	}
}

// TestMediaRulesWarn uploads the same media with --media-checks warn: it
// reaches X and is finalized, the response lists what was broken, the log
// says it and the metric counts it.
func TestMediaRulesWarn(t *testing.T) {
	cases := ruleCases(t)
	e := newEnv(t, xfake.Options{}, "--media-checks=warn")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, c := range cases {
		for i, data := range [][]byte{c.fast, c.end} {
			if data == nil {
				continue
			}
			var resp *mediagwv1.UploadResponse
			if i == 0 {
				cat, _ := mediagwv1.MediaCategory_value["MEDIA_CATEGORY_"+strings.ToUpper(c.category)]
				var err error
				resp, err = e.upload(ctx, &mediagwv1.UploadStart{MediaType: c.mediaType, MediaCategory: mediagwv1.MediaCategory(cat),
					TotalBytes: int64(len(data))}, data, fixed(32<<10))
				if err != nil {
					t.Fatalf("%s: warn mode refused: %v", c.reason, err)
				}
				e.checkStored(resp.GetMediaId(), data)
				in := resp.GetInspection()
				found := false
				for _, v := range in.GetViolations() {
					found = found || v.GetReason() == c.reason && v.GetLimit() == c.limit
				}
				if !found || in.GetEnforced() {
					t.Fatalf("%s: response inspection %v lacks the warning", c.reason, in)
				}
			} else {
				code, p := e.uploadREST(t, c.mediaType, c.category, data)
				if code != http.StatusOK {
					t.Fatalf("%s: REST warn mode answered %d %v", c.reason, code, p)
				}
				in, _ := p["inspection"].(map[string]any)
				if !strings.Contains(fmt.Sprint(in["violations"]), c.reason) {
					t.Fatalf("%s: REST response inspection %v lacks the warning", c.reason, in)
				}
			}
		}
	}
	text := scrape(t, e)
	for _, c := range cases {
		if n, _ := metricValue(text, "mediagw_uploads_media_violations_total", `reason="`+c.reason+`"`, `action="warned"`); n < 1 {
			t.Errorf("%s: no warning counted", c.reason)
		}
		if !strings.Contains(e.logs.String(), `"reason":"`+c.reason+`"`) {
			t.Errorf("%s: no warning logged", c.reason)
		}
	}
}

// TestMediaInspectionReported checks what the response and GetUpload say
// of compliant media, and that a refused keyed upload is refused again by
// its replay without X, with the same reasons.
func TestMediaInspectionReported(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	good := makeMedia(t, dir, "good.mp4", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=d=3",
		"-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart")
	fast := makeMedia(t, dir, "fps120.mp4", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=120", "-t", "1",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart")
	end := makeMedia(t, dir, "fps120-end.mp4", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=120", "-t", "4",
		"-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p")
	e := newEnv(t, xfake.Options{}, "--media-checks=enforce")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	resp, err := e.upload(ctx, &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(good)), IdempotencyKey: "good-1"}, good, fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	e.checkStored(resp.GetMediaId(), good)
	in := resp.GetInspection()
	if d := in.GetDuration().AsDuration(); d < 3*time.Second-time.Second/30 || d > 3*time.Second+time.Second/30 ||
		in.GetWidth() != 320 || in.GetHeight() != 240 || in.GetVideoCodec() != "h264" || in.GetPixFmt() != "yuv420p" ||
		in.GetFrameRate() != 30 || in.GetAudioCodec() != "aac" || in.GetAudioProfile() != "LC" || !in.GetFaststart() ||
		len(in.GetViolations()) != 0 || !in.GetEnforced() {
		t.Fatalf("inspection %v", in)
	}
	st, err := e.client.GetUpload(ctx, &mediagwv1.GetUploadRequest{IdempotencyKey: "good-1"})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetInspection().GetVideoCodec() != "h264" || st.GetInspection().GetWidth() != 320 || st.GetResponse().GetInspection().GetFrameRate() != 30 {
		t.Fatalf("GetUpload inspection %v", st)
	}

	c := ruleCase{reason: "FRAME_RATE_TOO_HIGH", field: "frame_rate", limit: "60", actual: "120"}
	start := &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(fast)), IdempotencyKey: "fast-1"}
	_, err = e.upload(ctx, start, fast, fixed(32<<10))
	checkRefusal(t, err, c)
	before := e.x.X.Stats().Requests
	_, err = e.upload(ctx, start, fast, fixed(32<<10))
	checkRefusal(t, err, c)
	if !strings.Contains(status.Convert(err).Message(), "refused before") {
		t.Fatalf("replay: %v, want the recorded refusal", err)
	}
	if after := e.x.X.Stats().Requests; fmt.Sprint(after) != fmt.Sprint(before) || after["init"] != 1 {
		t.Fatalf("the replay reached X: %v, then %v", before, after)
	}
	// Refused before FINALIZE, after INIT and the APPENDs: the replay too
	// answers from the ledger.
	endStart := &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(end)), IdempotencyKey: "end-1"}
	_, err = e.upload(ctx, endStart, end, fixed(32<<10))
	checkRefusal(t, err, c)
	initsBefore := requests(e, "init")
	_, err = e.upload(ctx, endStart, end, fixed(32<<10))
	checkRefusal(t, err, c)
	if n := requests(e, "init") - initsBefore; n != 0 || requests(e, "finalize") != 1 {
		t.Fatalf("the replay of a refused key sent %d INIT; X finalized %d uploads, want only the good one", n, requests(e, "finalize"))
	}
	// Of unknown size (a chunked body), the whole media is spooled before
	// INIT: a moov at the end is refused with no call to X.
	before = e.x.X.Stats().Requests
	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=video/mp4", io.MultiReader(bytes.NewReader(end)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	code, p, _ := readProblem(t, res)
	checkProblem(t, code, p, c)
	if after := e.x.X.Stats().Requests; fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a spooled upload refused for its moov reached X: %v, then %v", before, after)
	}
	st, err = e.client.GetUpload(ctx, &mediagwv1.GetUploadRequest{IdempotencyKey: "fast-1"})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetPhase() != mediagwv1.UploadPhase_UPLOAD_PHASE_FAILED || len(st.GetInspection().GetViolations()) != 1 ||
		st.GetInspection().GetViolations()[0].GetActual() != "120" || st.GetInspection().GetFrameRate() != 120 {
		t.Fatalf("GetUpload of the refused key: %v", st)
	}
}

// TestMediaRulesPerAccount: an account's media_rules in the accounts file
// change the limits for its uploads only.
func TestMediaRulesPerAccount(t *testing.T) {
	fps120 := videoAt(t, 120)
	accounts := writeFile(t, "accounts.yaml", []byte("accounts:\n  premium:\n    token: "+testToken+"\n"+
		"    media_rules:\n      tweet_video: {max_frame_rate: 120, max_duration: 125m}\n"))
	callers := writeFile(t, "callers.yaml", []byte("callers:\n  alice:\n    accounts: [premium, default]\n"))
	key := ecKey(t, "k")
	e := newEnv(t, xfake.Options{}, append(jwtFlags(writeFile(t, "jwks.json", jwks(t, key))),
		"--accounts="+accounts, "--callers="+callers, "--media-checks=enforce")...)
	ctx, cancel := context.WithTimeout(withBearer(context.Background(), key.sign(t, claims("alice"))), time.Minute)
	defer cancel()
	start := func(account string) *mediagwv1.UploadStart {
		return &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(fps120)), Account: account}
	}
	resp, err := e.upload(ctx, start("premium"), fps120, fixed(32<<10))
	if err != nil {
		t.Fatalf("premium (max_frame_rate 120): %v", err)
	}
	if resp.GetInspection().GetFrameRate() != 120 || len(resp.GetInspection().GetViolations()) != 0 {
		t.Fatalf("premium inspection %v", resp.GetInspection())
	}
	_, err = e.upload(ctx, start("default"), fps120, fixed(32<<10))
	checkRefusal(t, err, ruleCase{reason: "FRAME_RATE_TOO_HIGH", field: "frame_rate", limit: "60", actual: "120"})

	// The accounts file rewritten without the rule and reloaded (SIGHUP):
	// premium's next upload has the default limits.
	if err := os.WriteFile(accounts, []byte("accounts:\n  premium:\n    token: "+testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.app.reload(); err != nil {
		t.Fatal(err)
	}
	_, err = e.upload(ctx, start("premium"), fps120, fixed(32<<10))
	checkRefusal(t, err, ruleCase{reason: "FRAME_RATE_TOO_HIGH", field: "frame_rate", limit: "60", actual: "120"})

	// A misspelt limit or an unknown category stops startup.
	for _, bad := range []string{"tweet_video: {max_frame_rat: 120}", "vines: {max_frame_rate: 120}"} {
		f := writeFile(t, "bad.yaml", []byte("accounts:\n  premium:\n    token: t\n    media_rules:\n      "+bad+"\n"))
		if _, err := loadAccountRules(f); err == nil {
			t.Errorf("media_rules %q accepted", bad)
		}
		if _, err := policy.LoadAccounts(f); err == nil {
			t.Errorf("policy.LoadAccounts took media_rules %q", bad)
		}
	}
}

// TestMediaResumeKeepsVerdict cuts an inspected keyed upload (with a
// sha256) after mediagw's read before INIT and resumes it: the hash state
// of the segments in that read is right (the sha256 matches), and the
// resumed upload reports what its first life inspected.
func TestMediaResumeKeepsVerdict(t *testing.T) {
	needFFmpeg(t)
	good := makeMedia(t, t.TempDir(), "good.mp4", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30,noise=alls=40:allf=t", "-t", "3",
		"-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", "-movflags", "+faststart")
	if len(good) < 1<<20 {
		t.Fatalf("fixture is %d bytes, want over 1 MiB", len(good))
	}
	e := newEnv(t, xfake.Options{}, "--media-checks=enforce")
	st := e.cutGRPC("inspected-cut", good, 800<<10, true)
	if st.GetInspection().GetVideoCodec() != "h264" || st.GetInspection().GetFrameRate() != 30 {
		t.Fatalf("interrupted state %v: the inspection decided before INIT is not recorded", st)
	}
	resp, err := e.upload(context.Background(), resumeAt("inspected-cut", st.GetCommittedBytes()), good[st.GetCommittedBytes():], fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	e.checkStored(resp.GetMediaId(), good)
	if in := resp.GetInspection(); in.GetVideoCodec() != "h264" || in.GetWidth() != 320 || in.GetFrameRate() != 30 || len(in.GetViolations()) != 0 {
		t.Fatalf("resumed response inspection %v", in)
	}
}
