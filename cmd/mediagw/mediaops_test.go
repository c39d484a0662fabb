package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

func strp(s string) *string { return &s }

// TestImageAltTextGRPCEveryDialect: an image uploaded with alt text holds
// it at X once, a replay of the key sends no second call, and GetMedia
// shows it (v1.1 has no lookup: UNIMPLEMENTED naming the dialect).
func TestImageAltTextGRPCEveryDialect(t *testing.T) {
	t.Parallel()
	for _, d := range []string{"v2", "v2-command", "v1.1"} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			var e *env
			if d == "v1.1" {
				e = startApp(t, "", nil, "--x-dialect=v1.1")
			} else {
				e = newEnv(t, xfake.Options{}, "--x-dialect="+d)
			}
			data := media("image/png", 3000, 11)
			alt := "A red bicycle against a white wall — " + d
			start := &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: int64(len(data)), IdempotencyKey: "img-" + strings.ReplaceAll(d, ".", "-"),
				Metadata: &mediagwv1.MediaMetadata{AltText: strp(alt), SensitiveMediaWarning: &mediagwv1.SensitiveMediaWarning{Other: true}}}
			resp, err := e.upload(context.Background(), start, data, fixed(1000))
			if err != nil {
				t.Fatal(err)
			}
			if s := resp.GetActions().GetMetadata().GetState(); s != mediagwv1.ActionState_ACTION_STATE_APPLIED {
				t.Fatalf("metadata %v (%v), want APPLIED", s, resp.GetActions().GetMetadata().GetError())
			}
			again, err := e.upload(context.Background(), start, data, fixed(1000))
			if err != nil || again.GetMediaId() != resp.GetMediaId() || again.GetActions().GetMetadata().GetState() != mediagwv1.ActionState_ACTION_STATE_APPLIED {
				t.Fatalf("replay: %v %v", again, err)
			}
			gm, err := e.client.GetMedia(context.Background(), &mediagwv1.GetMediaRequest{MediaId: resp.GetMediaId()})
			if d == "v1.1" {
				if status.Code(err) != codes.Unimplemented || !strings.Contains(status.Convert(err).Message(), "v1.1") {
					t.Fatalf("GetMedia on v1.1: %v, want Unimplemented naming v1.1", err)
				}
				var m xfake.MediaInfo
				builtin(t, e, "/_xfake/media/"+resp.GetMediaId(), &m)
				if m.MetadataRequests != 1 || m.Metadata == nil || m.Metadata.AltText == nil || m.Metadata.AltText.Text != alt {
					t.Fatalf("emulator holds %d metadata calls, %+v; want 1 with the alt text", m.MetadataRequests, m.Metadata)
				}
				return
			}
			if err != nil || gm.GetAltText() != alt || gm.GetType() != "photo" {
				t.Fatalf("GetMedia: %v %v", gm, err)
			}
			m := e.x.Media(t, resp.GetMediaId())
			if m.MetadataRequests != 1 || m.Metadata == nil || m.Metadata.AltText == nil || m.Metadata.AltText.Text != alt {
				t.Fatalf("emulator holds %d metadata calls, %+v; want 1 with the alt text", m.MetadataRequests, m.Metadata)
			}
		})
	}
}

// TestImageAltTextREST: the same through the REST upload fields and the
// GetMedia route.
func TestImageAltTextREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{})
	data := media("image/png", 4000, 12)
	q := url.Values{"media_type": {"image/png"}, "total_bytes": {fmt.Sprint(len(data))}, "alt_text": {"Two cats on a sofa"}, "sensitive": {"adult"}}
	post := func() map[string]any {
		req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?"+q.Encode(), bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Idempotency-Key", "rest-img-1")
		code, out, _ := restUpload(t, req)
		if code != http.StatusOK {
			t.Fatalf("upload: HTTP %d %v", code, out)
		}
		return out
	}
	out := post()
	id := out["media_id"].(string)
	if st := out["actions"].(map[string]any)["metadata"].(map[string]any)["state"]; st != "ACTION_STATE_APPLIED" {
		t.Fatalf("actions %v", out["actions"])
	}
	post() // a replay
	res, err := http.Get(e.httpURL + "/v1/media/" + id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var info map[string]any
	if res.StatusCode != http.StatusOK || json.Unmarshal(b, &info) != nil || info["alt_text"] != "Two cats on a sofa" {
		t.Fatalf("GET /v1/media/%s: HTTP %d %s", id, res.StatusCode, b)
	}
	if m := e.x.Media(t, id); m.MetadataRequests != 1 || m.Metadata.SensitiveMediaWarning == nil || !m.Metadata.SensitiveMediaWarning.AdultContent {
		t.Fatalf("emulator: %d metadata calls, %+v", m.MetadataRequests, m.Metadata)
	}
	// SetMetadata over REST replaces the alt text: a second call, as asked.
	res, err = http.Post(e.httpURL+"/v1/media/"+id+"/metadata", "application/json", strings.NewReader(`{"altText":"Two cats asleep"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if m := e.x.Media(t, id); res.StatusCode != http.StatusOK || m.MetadataRequests != 2 || m.Metadata.AltText.Text != "Two cats asleep" {
		t.Fatalf("POST metadata: HTTP %d, emulator %d calls %+v", res.StatusCode, m.MetadataRequests, m.Metadata.AltText)
	}
}

// subtitlesUpload uploads an SRT track and returns its media id.
func subtitlesUpload(t *testing.T, e *env, key string) string {
	t.Helper()
	srt := []byte("1\n00:00:00,000 --> 00:00:02,000\nHello\n")
	resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "text/srt", TotalBytes: int64(len(srt)), IdempotencyKey: key}, srt, fixed(100))
	if err != nil {
		t.Fatalf("subtitles upload: %v", err)
	}
	return resp.GetMediaId()
}

// TestVideoActionsAfterCallerLeft: a video with alt text and subtitles
// whose caller disconnects right after FINALIZE gets both once it
// SUCCEEDED, with no caller connected; GetUpload reports them applied.
func TestVideoActionsAfterCallerLeft(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{ProcessingTime: time.Second})
	sub := subtitlesUpload(t, e, "track-1")
	data := media("video/mp4", 200<<10, 13)
	start := &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data)), IdempotencyKey: "video-1",
		Metadata:  &mediagwv1.MediaMetadata{AltText: strp("A talk about bicycles")},
		Subtitles: []*mediagwv1.SubtitlesTrack{{SubtitlesMediaId: sub, LanguageCode: "EN", DisplayName: "English"}}}
	resp, err := e.upload(context.Background(), start, data, fixed(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	if s := resp.GetActions().GetMetadata().GetState(); s != mediagwv1.ActionState_ACTION_STATE_PENDING {
		t.Fatalf("metadata at FINALIZE %v, want PENDING", s)
	}
	_ = e.cc.Close() // the caller goes
	id := resp.GetMediaId()
	waitFor(t, func() bool {
		m := e.x.Media(t, id)
		return m.MetadataRequests == 1 && m.SubtitlesCreateRequests == 1
	})
	m := e.x.Media(t, id)
	if m.State != "succeeded" || m.Metadata.AltText.Text != "A talk about bicycles" || len(m.Subtitles) != 1 || m.Subtitles[0].MediaID != sub || m.Subtitles[0].LanguageCode != "EN" {
		t.Fatalf("emulator holds %+v", m)
	}
	// A new connection: the ledger says applied, and nothing more is sent.
	cc := dial(t, e)
	st, err := cc.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: "video-1"})
	waitFor(t, func() bool {
		st, err = cc.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: "video-1"})
		return err == nil && st.GetActions().GetSubtitles()[0].GetStatus().GetState() == mediagwv1.ActionState_ACTION_STATE_APPLIED
	})
	if st.GetActions().GetMetadata().GetState() != mediagwv1.ActionState_ACTION_STATE_APPLIED {
		t.Fatalf("GetUpload actions %v", st.GetActions())
	}
	gs, err := cc.GetStatus(context.Background(), &mediagwv1.GetStatusRequest{MediaId: id})
	if err != nil || gs.GetActions().GetMetadata().GetState() != mediagwv1.ActionState_ACTION_STATE_APPLIED {
		t.Fatalf("GetStatus: %v %v", gs, err)
	}
	ws, err := cc.WatchStatus(context.Background(), &mediagwv1.WatchStatusRequest{MediaId: id})
	if err != nil {
		t.Fatal(err)
	}
	last, err := ws.Recv()
	if err != nil || last.GetState() != mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED ||
		last.GetActions().GetSubtitles()[0].GetStatus().GetState() != mediagwv1.ActionState_ACTION_STATE_APPLIED {
		t.Fatalf("WatchStatus: %v %v", last, err)
	}
	if m := e.x.Media(t, id); m.MetadataRequests != 1 || m.SubtitlesCreateRequests != 1 {
		t.Fatalf("emulator: %d metadata, %d subtitles calls; want 1 and 1", m.MetadataRequests, m.SubtitlesCreateRequests)
	}
}

// dial opens a new gRPC client to e.
func dial(t *testing.T, e *env) mediagwv1.MediaUploadServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(e.app.grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return mediagwv1.NewMediaUploadServiceClient(conn)
}
