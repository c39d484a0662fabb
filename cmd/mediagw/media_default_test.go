package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// videoAt is a second of H.264 video at fps frames per second, its moov
// first: the frame rate is the only rule it may break.
func videoAt(t *testing.T, fps int) []byte {
	t.Helper()
	needFFmpeg(t)
	return makeMedia(t, t.TempDir(), fmt.Sprintf("fps%d.mp4", fps), "-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=160x120:rate=%d", fps), "-t", "1",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart")
}

// TestMediaRulesDefaultCredentials: default_media_rules in the accounts
// file change the rules of the uploads with mediagw's default credentials
// and with a caller's own X token, not those of a named account; SIGHUP
// reloads them, and a bad file leaves the previous rules in force.
func TestMediaRulesDefaultCredentials(t *testing.T) {
	fps120, fps30 := videoAt(t, 120), videoAt(t, 30)
	premium := "accounts:\n  premium:\n    token: " + testToken + "\n"
	accounts := writeFile(t, "accounts.yaml", []byte(premium+"default_media_rules:\n  tweet_video: {max_frame_rate: 120}\n"))
	callers := writeFile(t, "callers.yaml", []byte("callers:\n  alice:\n    accounts: [default, premium]\n    user_tokens: true\n"))
	key := ecKey(t, "k")
	e := newEnv(t, xfake.Options{}, append(jwtFlags(writeFile(t, "jwks.json", jwks(t, key))),
		"--accounts="+accounts, "--callers="+callers, "--media-checks=enforce")...)
	ctx, cancel := context.WithTimeout(withBearer(context.Background(), key.sign(t, claims("alice"))), time.Minute)
	defer cancel()
	own := withToken(ctx, testToken)
	upload := func(ctx context.Context, account string, data []byte) (*mediagwv1.UploadResponse, error) {
		return e.upload(ctx, &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data)), Account: account}, data, fixed(32<<10))
	}
	tooFast := func(limit, actual string) ruleCase {
		return ruleCase{reason: "FRAME_RATE_TOO_HIGH", field: "frame_rate", limit: limit, actual: actual}
	}
	reload := func(body string) {
		t.Helper()
		if err := os.WriteFile(accounts, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := e.app.reload(); err != nil {
			t.Fatal(err)
		}
	}

	// Raised to 120 fps at startup: the default credentials and a
	// caller's own token take what the built-in 60 fps refuses; the named
	// account keeps the built-in rules.
	for name, ctx := range map[string]context.Context{"default credentials": ctx, "own token": own} {
		resp, err := upload(ctx, "", fps120)
		if err != nil {
			t.Fatalf("%s, max_frame_rate 120: %v", name, err)
		}
		if in := resp.GetInspection(); in.GetFrameRate() != 120 || len(in.GetViolations()) != 0 || !in.GetEnforced() {
			t.Fatalf("%s: inspection %v", name, in)
		}
		e.checkStored(resp.GetMediaId(), fps120)
	}
	if _, err := upload(ctx, "default", fps120); err != nil {
		t.Fatalf("account default named, max_frame_rate 120: %v", err)
	}
	_, err := upload(ctx, "premium", fps120)
	checkRefusal(t, err, tooFast("60", "120"))

	// Without default_media_rules (SIGHUP): the built-in rules again.
	reload(premium)
	_, err = upload(ctx, "", fps120)
	checkRefusal(t, err, tooFast("60", "120"))
	if _, err := upload(ctx, "", fps30); err != nil {
		t.Fatalf("30 fps, built-in rules: %v", err)
	}

	// Lowered to 24 fps: what the built-in rules take is refused, before
	// INIT, for both kinds of upload.
	reload(premium + "default_media_rules:\n  tweet_video: {max_frame_rate: 24}\n")
	inits := requests(e, "INIT")
	for _, ctx := range []context.Context{ctx, own} {
		_, err = upload(ctx, "", fps30)
		checkRefusal(t, err, tooFast("24", "30"))
	}
	if n := requests(e, "INIT") - inits; n != 0 {
		t.Errorf("%d INITs for refused uploads", n)
	}
	if _, err := upload(ctx, "premium", fps30); err != nil {
		t.Fatalf("premium, 30 fps: %v", err)
	}

	// A misspelt rule is not loaded: the 24 fps limit stays.
	reload(premium + "default_media_rules:\n  tweet_video: {max_frame_rat: 120}\n")
	_, err = upload(ctx, "", fps30)
	checkRefusal(t, err, tooFast("24", "30"))
	if logs := e.logs.String(); !strings.Contains(logs, "accounts file not reloaded") ||
		!strings.Contains(logs, `default_media_rules.tweet_video: \"max_frame_rat\" is not a media rule`) {
		t.Errorf("the log does not say why the accounts file was not reloaded:\n%s", logs)
	}
}
