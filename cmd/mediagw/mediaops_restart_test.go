package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// TestMediaRecordsSurviveARestart: without Redis, what mediagw knows of an
// uploaded media (its category above all) is in the bbolt ledger's file,
// so subtitles attach to a video uploaded before a restart, and an image
// still takes none.
func TestMediaRecordsSurviveARestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.db")
	e := newEnv(t, xfake.Options{ProcessingTime: 300 * time.Millisecond}, "--ledger="+path)
	ctx := context.Background()
	up := func(env *env, start *mediagwv1.UploadStart, data []byte) *mediagwv1.UploadResponse {
		t.Helper()
		start.TotalBytes = int64(len(data))
		resp, err := env.upload(ctx, start, data, fixed(64<<10))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	video := up(e, &mediagwv1.UploadStart{MediaType: "video/mp4"}, media("video/mp4", 100<<10, 31))
	image := up(e, &mediagwv1.UploadStart{MediaType: "image/png"}, media("image/png", 3000, 32))
	waitFor(t, func() bool {
		st, err := e.client.GetStatus(ctx, &mediagwv1.GetStatusRequest{MediaId: video.GetMediaId()})
		return err == nil && relayTerminal(st)
	})
	e.stop()

	e2 := startApp(t, e.x.URL, nil, "--ledger="+path)
	e2.x = e.x
	track := up(e2, &mediagwv1.UploadStart{MediaType: "text/srt"}, []byte("1\n00:00:00,000 --> 00:00:02,000\nHi\n"))
	if _, err := e2.client.AttachSubtitles(ctx, &mediagwv1.AttachSubtitlesRequest{VideoMediaId: video.GetMediaId(),
		SubtitlesMediaId: track.GetMediaId(), LanguageCode: "EN"}); err != nil {
		t.Fatalf("subtitles on a video uploaded before the restart: %v", err)
	}
	if info := e.x.Media(t, video.GetMediaId()); info.SubtitlesCreateRequests != 1 {
		t.Fatalf("X applied %d subtitles calls, want 1", info.SubtitlesCreateRequests)
	}
	if _, err := e2.client.AttachSubtitles(ctx, &mediagwv1.AttachSubtitlesRequest{VideoMediaId: image.GetMediaId(),
		SubtitlesMediaId: track.GetMediaId(), LanguageCode: "EN"}); err == nil {
		t.Fatal("subtitles on an image uploaded before the restart were accepted")
	}
}
