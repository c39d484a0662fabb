package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// TestDeclaredSHA256 uploads with the caller's SHA-256 of the media: a
// match finalizes, a mismatch fails with InvalidArgument and X never
// finalizes the media, a malformed digest is refused before INIT.
func TestDeclaredSHA256(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	data := media("video/mp4", 300<<10, 41)
	start := func(digest string) *mediagwv1.UploadStart {
		return &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data)), Sha256: digest}
	}

	resp, err := e.upload(context.Background(), start(sum(data)), data, fixed(32<<10))
	if err != nil {
		t.Fatalf("matching sha256: %v", err)
	}
	e.checkStored(resp.GetMediaId(), data)

	wrong := strings.Repeat("ab", 32)
	_, err = e.upload(context.Background(), start(wrong), data, fixed(32<<10))
	if codeOf(err) != "InvalidArgument" || !strings.Contains(err.Error(), "sha256 mismatch") || !strings.Contains(err.Error(), sum(data)) {
		t.Fatalf("mismatching sha256: %v", err)
	}
	logs := e.uploadLogs()
	failed := logs[len(logs)-1]
	if info := e.x.Media(t, failed["media_id"].(string)); !info.FinalizedAt.IsZero() {
		t.Fatalf("media with a mismatching sha256 was finalized at X: %+v", info)
	}

	inits := e.x.X.Stats().Requests["init"]
	_, err = e.upload(context.Background(), start("not-a-digest"), data, fixed(32<<10))
	if codeOf(err) != "InvalidArgument" || !strings.Contains(err.Error(), "is not a hex SHA-256 digest") {
		t.Fatalf("malformed sha256: %v", err)
	}
	if e.x.X.Stats().Requests["init"] != inits {
		t.Fatal("a malformed sha256 reached X")
	}

	for digest, want := range map[string]int{sum(data): http.StatusOK, wrong: http.StatusBadRequest} {
		req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=video/mp4&sha256="+digest, bytes.NewReader(data))
		if code, out, _ := restUpload(t, req); code != want {
			t.Fatalf("REST with sha256 %s: HTTP %d %v, want %d", digest[:8], code, out, want)
		}
	}
}
