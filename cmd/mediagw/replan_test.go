package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/ledger"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// replanEnv is mediagw cutting 4 MiB segments in front of an emulator
// whose edge refuses APPENDs over 3 MiB with an empty 413.
func replanEnv(t *testing.T) *env {
	return newEnv(t, xfake.Options{MaxSegment: 3 << 20}, "--segment-size=4MiB")
}

// TestReplanOn413: a keyed upload with a declared sha256 meets X's 413,
// is cut at 2 MiB from its first segment on, and finishes byte-exact. The
// ledger holds the new plan, the log and the metric say so, and the next
// upload is cut at 2 MiB from the start.
func TestReplanOn413(t *testing.T) {
	t.Parallel()
	e := replanEnv(t)
	data := media("video/mp4", 10<<20+123, 71)
	resp, err := e.upload(context.Background(), keyed("replan-1", data, true), data, fixed(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	e.checkStored(resp.GetMediaId(), data)
	if n := e.x.Media(t, resp.GetMediaId()).Segments; n != 6 {
		t.Fatalf("X holds %d segments, want 6 (5 of 2 MiB and the last 123 bytes)", n)
	}
	entry, err := e.app.ledger.Get(context.Background(), "u/replan-1") // keys of callers without an identity
	if err != nil {
		t.Fatal(err)
	}
	if want := []ledger.Run{{From: 0, Size: 2 << 20}}; len(entry.Plan) != 1 || entry.Plan[0] != want[0] || entry.Segments != 6 || entry.SegmentSize != 4<<20 {
		t.Fatalf("ledger plan %v, %d segments of %d: want %v, 6 segments, planned at 4 MiB", entry.Plan, entry.Segments, entry.SegmentSize, want)
	}
	if !strings.Contains(e.logs.String(), "the rest of the upload is cut smaller") {
		t.Fatal("no log line says the upload was cut smaller")
	}
	if v, ok := metricValue(scrape(t, e), "mediagw_upstream_segments_replans_total"); !ok || v != 1 {
		t.Fatalf("mediagw_upstream_segments_replans_total = %v (%v), want 1", v, ok)
	}
	// The next upload starts at the size X took: no 413.
	before := e.x.X.Stats().Requests["append"]
	resp, err = e.upload(context.Background(), keyed("replan-2", data, true), data, fixed(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	e.checkStored(resp.GetMediaId(), data)
	if n := e.x.X.Stats().Requests["append"] - before; n != 6 {
		t.Fatalf("the next upload made %d APPENDs, want 6", n)
	}
}

// TestReplanThenResume: a keyed upload with a declared sha256 is cut
// smaller, then its stream breaks. The resume goes on under the recorded
// plan from a boundary whose hash state is known, makes no new INIT, and
// is byte-exact with the declared digest.
func TestReplanThenResume(t *testing.T) {
	t.Parallel()
	e := replanEnv(t)
	data := media("video/mp4", 12<<20+123, 72)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := e.client.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(startMsg(keyed("replan-cut", data, true))); err != nil {
		t.Fatal(err)
	}
	// Segment 0 (4 MiB) is refused; the writer cuts the bytes it holds
	// again at 2 MiB with the next message it takes.
	for off := 0; off < 12<<20; off += 1 << 20 {
		if err := stream.Send(chunkMsg(data[off : off+1<<20])); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		v, _ := metricValue(scrape(t, e), "mediagw_upstream_segments_replans_total")
		return v == 1
	})
	if err := stream.Send(chunkMsg(data[12<<20 : 12<<20+100])); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return e.getUpload("replan-cut").GetCommittedBytes() > 0 })
	cancel()
	st := e.waitPhase("replan-cut", mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED)
	// Committed bytes end on a boundary of the new plan whose hash state is
	// known: not 2 MiB, which the bytes had passed before the re-plan
	// (they were hashed at 4 MiB, the old plan's boundary).
	if c := st.GetCommittedBytes(); c%(2<<20) != 0 || c < 4<<20 {
		t.Fatalf("interrupted at %d committed bytes, want a multiple of 2 MiB from 4 MiB on", c)
	}
	resp, err := e.upload(context.Background(), resumeAt("replan-cut", st.GetCommittedBytes()), data[st.GetCommittedBytes():], fixed(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	e.checkStored(resp.GetMediaId(), data)
	if s := e.x.X.Stats(); s.Requests["init"] != 1 || s.Requests["finalize"] != 1 {
		t.Fatalf("X saw %d INIT and %d FINALIZE, want 1 each", s.Requests["init"], s.Requests["finalize"])
	}
	if n := e.x.Media(t, resp.GetMediaId()).Segments; n != 7 {
		t.Fatalf("X holds %d segments, want 7 (6 of 2 MiB and the last 123 bytes)", n)
	}
}

// TestReplanOverREST: a REST body read straight into segment buffers is
// cut again the same way, and a file that cannot be cut smaller (X
// refuses even 1 MiB) is refused with X's 413 as a problem saying why.
func TestReplanOverREST(t *testing.T) {
	t.Parallel()
	e := replanEnv(t)
	data := media("video/mp4", 9<<20+5, 73)
	code, body := e.uploadREST(t, "video/mp4", "tweet_video", data)
	if code != http.StatusOK {
		t.Fatalf("REST upload: HTTP %d %v", code, body)
	}
	id, _ := body["media_id"].(string)
	e.checkStored(id, data)
	if n := e.x.Media(t, id).Segments; n != 5 {
		t.Fatalf("X holds %d segments, want 5 (4 of 2 MiB and the last 1 MiB + 5 bytes)", n)
	}

	small := newEnv(t, xfake.Options{MaxSegment: 512 << 10}, "--segment-size=1MiB")
	code, body = small.uploadREST(t, "video/mp4", "tweet_video", data)
	detail, _ := body["detail"].(string)
	if code != http.StatusBadRequest || !strings.Contains(detail, "HTTP 413") || !strings.Contains(detail, "cannot cut the upload smaller") {
		t.Fatalf("REST upload that cannot be cut smaller: HTTP %d %v", code, body)
	}
}
