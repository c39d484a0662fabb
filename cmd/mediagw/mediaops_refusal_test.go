package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// xCalls is how many requests the emulator saw.
func xCalls(e *env) int64 {
	var n int64
	for _, v := range e.x.X.Stats().Requests {
		n += v
	}
	return n
}

// TestMediaActionRefusals: each refusal mediagw can know in advance has
// its code and sends nothing to X.
func TestMediaActionRefusals(t *testing.T) {
	t.Parallel()
	k1 := rsaKey(t, "k1")
	e := newEnv(t, xfake.Options{ProcessingTime: 300 * time.Millisecond}, jwtFlags(writeFile(t, "jwks.json", jwks(t, k1)))...)
	alice := withAuthorization(context.Background(), "Bearer "+k1.sign(t, claims("alice")))
	bob := withAuthorization(context.Background(), "Bearer "+k1.sign(t, claims("bob")))
	up := func(ctx context.Context, start *mediagwv1.UploadStart, data []byte) (*mediagwv1.UploadResponse, error) {
		start.TotalBytes = int64(len(data))
		return e.upload(ctx, start, data, fixed(64<<10))
	}
	img := media("image/png", 3000, 21)
	image, err := up(alice, &mediagwv1.UploadStart{MediaType: "image/png", IdempotencyKey: "img"}, img)
	if err != nil {
		t.Fatal(err)
	}
	srt := []byte("1\n00:00:00,000 --> 00:00:02,000\nHi\n")
	track, err := up(alice, &mediagwv1.UploadStart{MediaType: "text/srt", IdempotencyKey: "srt"}, srt)
	if err != nil {
		t.Fatal(err)
	}
	vid := media("video/mp4", 100<<10, 22)
	video, err := up(alice, &mediagwv1.UploadStart{MediaType: "video/mp4", IdempotencyKey: "vid"}, vid)
	if err != nil {
		t.Fatal(err)
	}
	// A video X fails: MPEG-TS without its sync byte (mediagw does not
	// sniff it).
	bad := media("video/webm", 100<<10, 23)
	bad[0] = 0
	failed, err := up(alice, &mediagwv1.UploadStart{MediaType: "video/mp2t", IdempotencyKey: "bad"}, bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{video.GetMediaId(), failed.GetMediaId()} {
		waitFor(t, func() bool {
			st, err := e.client.GetStatus(alice, &mediagwv1.GetStatusRequest{MediaId: id})
			return err == nil && relayTerminal(st)
		})
	}
	long := strings.Repeat("é", 1001)
	cases := []struct {
		name string
		call func() error
		code string
		want string
	}{
		{"1001-character alt text at upload", func() error {
			_, err := up(alice, &mediagwv1.UploadStart{MediaType: "image/png", IdempotencyKey: "long", Metadata: &mediagwv1.MediaMetadata{AltText: &long}}, img)
			return err
		}, "InvalidArgument", "1000"},
		{"1001-character alt text in SetMetadata", func() error {
			_, err := e.client.SetMetadata(alice, &mediagwv1.SetMetadataRequest{MediaId: image.GetMediaId(), Metadata: &mediagwv1.MediaMetadata{AltText: &long}})
			return err
		}, "InvalidArgument", "1000"},
		{"lowercase language code at upload", func() error {
			_, err := up(alice, &mediagwv1.UploadStart{MediaType: "video/mp4", IdempotencyKey: "lower",
				Subtitles: []*mediagwv1.SubtitlesTrack{{SubtitlesMediaId: track.GetMediaId(), LanguageCode: "en"}}}, vid)
			return err
		}, "InvalidArgument", "upper-case"},
		{"lowercase language code in AttachSubtitles", func() error {
			_, err := e.client.AttachSubtitles(alice, &mediagwv1.AttachSubtitlesRequest{VideoMediaId: video.GetMediaId(), SubtitlesMediaId: track.GetMediaId(), LanguageCode: "en"})
			return err
		}, "InvalidArgument", "upper-case"},
		{"subtitles on an image at upload", func() error {
			_, err := up(alice, &mediagwv1.UploadStart{MediaType: "image/png", IdempotencyKey: "subimg",
				Subtitles: []*mediagwv1.SubtitlesTrack{{SubtitlesMediaId: track.GetMediaId(), LanguageCode: "EN"}}}, img)
			return err
		}, "InvalidArgument", "videos only"},
		{"subtitles on an image in AttachSubtitles", func() error {
			_, err := e.client.AttachSubtitles(alice, &mediagwv1.AttachSubtitlesRequest{VideoMediaId: image.GetMediaId(), SubtitlesMediaId: track.GetMediaId(), LanguageCode: "EN"})
			return err
		}, "InvalidArgument", "videos only"},
		{"another caller's media in SetMetadata", func() error {
			_, err := e.client.SetMetadata(bob, &mediagwv1.SetMetadataRequest{MediaId: image.GetMediaId(), Metadata: &mediagwv1.MediaMetadata{AltText: strp("mine")}})
			return err
		}, "NotFound", "not uploaded through mediagw by this caller"},
		{"another caller's video in AttachSubtitles", func() error {
			_, err := e.client.AttachSubtitles(bob, &mediagwv1.AttachSubtitlesRequest{VideoMediaId: video.GetMediaId(), SubtitlesMediaId: track.GetMediaId(), LanguageCode: "EN"})
			return err
		}, "NotFound", "not uploaded through mediagw by this caller"},
		{"another caller's media in GetMedia", func() error {
			_, err := e.client.GetMedia(bob, &mediagwv1.GetMediaRequest{MediaId: image.GetMediaId()})
			return err
		}, "NotFound", "not uploaded through mediagw by this caller"},
		{"metadata on a FAILED video", func() error {
			_, err := e.client.SetMetadata(alice, &mediagwv1.SetMetadataRequest{MediaId: failed.GetMediaId(), Metadata: &mediagwv1.MediaMetadata{AltText: strp("x")}})
			return err
		}, "FailedPrecondition", "failed processing"},
		{"a replay of a key with other metadata", func() error {
			_, err := up(alice, &mediagwv1.UploadStart{MediaType: "image/png", IdempotencyKey: "img", Metadata: &mediagwv1.MediaMetadata{AltText: strp("late")}}, img)
			return err
		}, "InvalidArgument", "differ from those the upload of this idempotency key"},
		{"metadata at upload without an idempotency key", func() error {
			_, err := up(alice, &mediagwv1.UploadStart{MediaType: "image/png", Metadata: &mediagwv1.MediaMetadata{AltText: strp("x")}}, img)
			return err
		}, "InvalidArgument", "idempotency_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := xCalls(e)
			err := tc.call()
			if codeOf(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Fatalf("%v, want %s naming %q", err, tc.code, tc.want)
			}
			if n := xCalls(e) - before; n != 0 {
				t.Fatalf("%d X calls, want 0 (%v)", n, e.x.X.Stats().Requests)
			}
		})
	}
}

func relayTerminal(st *mediagwv1.ProcessingStatus) bool {
	s := st.GetState()
	return s == mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED || s == mediagwv1.ProcessingState_PROCESSING_STATE_FAILED
}

// TestV11AltTextOnVideoRefused: v1.1 takes alt text on images and GIFs
// only; the refusal names the dialect and comes before INIT.
func TestV11AltTextOnVideoRefused(t *testing.T) {
	t.Parallel()
	e := startApp(t, "", nil, "--x-dialect=v1.1")
	data := media("video/mp4", 10<<10, 24)
	_, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data)), IdempotencyKey: "v",
		Metadata: &mediagwv1.MediaMetadata{AltText: strp("a video")}}, data, fixed(4096))
	if codeOf(err) != "InvalidArgument" || !strings.Contains(status.Convert(err).Message(), "v1.1") {
		t.Fatalf("%v, want InvalidArgument naming v1.1", err)
	}
	var st xfake.Stats
	builtin(t, e, "/_xfake/stats", &st)
	if len(st.Requests) != 0 {
		t.Fatalf("the emulator saw %v, want nothing", st.Requests)
	}
}

// builtin reads an inspection endpoint of the app's built-in emulator.
func builtin(t *testing.T, e *env, path string, out any) {
	t.Helper()
	res, err := http.Get(e.app.xURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(out); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %v", path, res.StatusCode, err)
	}
}
